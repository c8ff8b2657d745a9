//! Resources whose scope is not in their path: a change order (`change-order:<id>`) and
//! an app addressed by id (`app-id:<id>`, seed 004) are widened to the project/app/env
//! path they live under, so the authorizer judges them like any other resource in that
//! scope. An unknown id stays as it is: the authorizer refuses it unless the caller may
//! act everywhere, and the handler then answers 404.

use crate::store::Store;

/// Key of the change-order index: the id → `project/app/env`.
pub fn change_index_key(id: &str) -> String {
    crate::domain::changes::index_key(id)
}

/// Key of the app index: the id → `project/app`.
pub fn app_index_key(id: &str) -> String {
    crate::domain::apps::id_key(id)
}

/// The scope path of `resource`, widened when it names a change order or an app id.
pub fn resolve(store: &Store, resource: String) -> String {
    let lookup = |key: String| store.get_json::<String>(&key).ok().flatten();
    if let Some(id) = resource.strip_prefix("change-order:") {
        if let Some(path) = lookup(change_index_key(id)) {
            let mut parts = path.splitn(3, '/');
            if let (Some(p), Some(a), Some(e)) = (parts.next(), parts.next(), parts.next()) {
                return format!("project:{p}/app:{a}/env:{e}/change-order:{id}");
            }
        }
    } else if let Some(id) = resource.strip_prefix("app-id:")
        && let Some(path) = lookup(app_index_key(id))
        && let Some((p, a)) = path.split_once('/')
    {
        return format!("project:{p}/app:{a}");
    }
    resource
}
