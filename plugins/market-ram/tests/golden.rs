//! A realistic two-component template (WordPress depending on MySQL, with a config-file
//! volume) read into exactly the normalized template on file.

use market_ram::{Identity, parse};
use serde_json::Value;

const RAM: &str = include_str!("golden/wordpress-mysql.ram.json");
const EXPECTED: &str = include_str!("golden/wordpress-mysql.template.json");

#[test]
fn wordpress_with_mysql_normalizes_to_the_golden_template() {
    let template = parse(RAM, Identity::Required).expect("the golden template is valid");
    let actual = serde_json::to_value(&template).expect("serializes");
    let expected: Value = serde_json::from_str(EXPECTED).expect("golden JSON");
    assert_eq!(
        actual,
        expected,
        "actual:\n{}",
        serde_json::to_string_pretty(&actual).unwrap_or_default()
    );
    assert_eq!(template.app_description, "Blog and CMS");
}
