//! Dependencies between a template's components: each `dep_service_key` names another
//! component by its `service_share_uuid` (or its `service_key` when it has none) and
//! becomes that component's key in `depends-on`. Rainbond drops a key that matches
//! nothing; here it is refused at its path, and so is a cycle, naming its components, since
//! dependencies deploy first and a cycle could never start.

use std::collections::HashMap;

use crate::component::Draft;
use crate::violation::{Violation, join};

/// Fills every draft's `depends_on` and reports unknown keys and cycles.
pub(crate) fn resolve(drafts: &mut [Draft], violations: &mut Vec<Violation>) {
    let by_identity: HashMap<&str, usize> = drafts
        .iter()
        .enumerate()
        .map(|(i, d)| (d.identity.as_str(), i))
        .collect();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); drafts.len()];
    for (i, draft) in drafts.iter().enumerate() {
        for (key, path) in &draft.dependencies {
            match by_identity.get(key.as_str()) {
                Some(&j) if j == i => violations.push(Violation::new(
                    path.clone(),
                    "a component cannot depend on itself",
                )),
                Some(&j) => {
                    if !edges[i].contains(&j) {
                        edges[i].push(j);
                    }
                }
                None => violations.push(Violation::new(
                    path.clone(),
                    format!(
                        "`{key}` matches no component of the template (by service_share_uuid, or service_key where a component has none)"
                    ),
                )),
            }
        }
    }
    for cycle in cycles(&edges) {
        let names: Vec<&str> = cycle
            .iter()
            .chain(cycle.first())
            .map(|&i| drafts[i].component.key.as_str())
            .collect();
        violations.push(Violation::new(
            join(&drafts[cycle[0]].path, "dep_service_map_list"),
            format!("dependency cycle: {}", names.join(" → ")),
        ));
    }
    for (i, targets) in edges.iter().enumerate() {
        let keys = targets
            .iter()
            .map(|&j| drafts[j].component.key.clone())
            .collect();
        drafts[i].component.depends_on = keys;
    }
}

/// One cycle per strongly tangled region, each as the components along it, starting at
/// the one that comes first in the template.
fn cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::New; edges.len()];
    let mut found = Vec::new();
    for start in 0..edges.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative depth-first walk: the path so far and, per node on it, the next edge.
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::OnPath;
        while let Some(&(node, next)) = path.last() {
            if let Some(&target) = edges[node].get(next) {
                if let Some(top) = path.last_mut() {
                    top.1 += 1;
                }
                match marks[target] {
                    Mark::New => {
                        marks[target] = Mark::OnPath;
                        path.push((target, 0));
                    }
                    Mark::OnPath => {
                        let from = path.iter().position(|(n, _)| *n == target).unwrap_or(0);
                        let mut cycle: Vec<usize> = path[from..].iter().map(|(n, _)| *n).collect();
                        let first = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
                        cycle.rotate_left(first);
                        found.push(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                path.pop();
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::cycles;

    #[test]
    fn finds_each_cycle_once_and_ignores_shared_dependencies() {
        // 0 → 1 → 2 → 0, and 3 → 1 joins the cycle without being on it.
        let edges = vec![vec![1], vec![2], vec![0], vec![1]];
        assert_eq!(cycles(&edges), vec![vec![0, 1, 2]]);
        // A diamond has no cycle.
        let diamond = vec![vec![1, 2], vec![3], vec![3], vec![]];
        assert!(cycles(&diamond).is_empty());
        // Two separate cycles.
        let two = vec![vec![1], vec![0], vec![3], vec![2]];
        assert_eq!(cycles(&two), vec![vec![0, 1], vec![2, 3]]);
    }
}
