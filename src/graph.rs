//! The dependency graph of a stack's services: levels (Kahn's algorithm)
//! and cycles, reported whole. Shared by `config` (which rejects cycles) and
//! `plan` (which orders what `up` starts).
//!
//! Every service in a level depends only on services in earlier levels. A
//! cycle is found by a depth-first walk and given as the path that closes
//! it (`a → b → a`), so the error can name every service in it.

use indexmap::IndexMap;

/// Services grouped so that each depends only on earlier groups; or the cycle.
pub fn levels(deps: &IndexMap<String, Vec<String>>) -> Result<Vec<Vec<String>>, Vec<String>> {
    if let Some(cycle) = find_cycle(deps) {
        return Err(cycle);
    }
    let mut level_of: IndexMap<&str, usize> = IndexMap::new();
    // Without cycles, repeated relaxation settles in at most n rounds.
    for _ in 0..=deps.len() {
        let mut changed = false;
        for (name, ds) in deps {
            let lvl = ds
                .iter()
                .filter_map(|d| level_of.get(d.as_str()).map(|l| l + 1))
                .max()
                .unwrap_or(0);
            let all_known = ds
                .iter()
                .all(|d| level_of.contains_key(d.as_str()) || !deps.contains_key(d));
            if all_known && level_of.get(name.as_str()) != Some(&lvl) {
                level_of.insert(name, lvl);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let depth = level_of.values().max().map_or(0, |m| m + 1);
    let mut out = vec![Vec::new(); depth];
    for name in deps.keys() {
        out[level_of[name.as_str()]].push(name.clone());
    }
    Ok(out)
}

fn find_cycle(deps: &IndexMap<String, Vec<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit<'a>(
        n: &'a str,
        deps: &'a IndexMap<String, Vec<String>>,
        marks: &mut IndexMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        marks.insert(n, Mark::Active);
        stack.push(n);
        for d in deps.get(n).into_iter().flatten() {
            match marks.get(d.as_str()).copied().unwrap_or(Mark::New) {
                Mark::Active => {
                    let start = stack
                        .iter()
                        .position(|s| s == d)
                        .expect("active nodes are on the stack");
                    let mut cycle: Vec<String> =
                        stack[start..].iter().map(|s| s.to_string()).collect();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                Mark::New if deps.contains_key(d) => {
                    if let Some(c) = visit(d, deps, marks, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        marks.insert(n, Mark::Done);
        None
    }
    let mut marks = IndexMap::new();
    for n in deps.keys() {
        if marks.get(n.as_str()).copied().unwrap_or(Mark::New) == Mark::New {
            if let Some(c) = visit(n, deps, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> IndexMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(n, ds)| (n.to_string(), ds.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    #[test]
    fn levels_start_independent_services_together() {
        let g = graph(&[
            ("app", &["db", "cache"]),
            ("db", &[]),
            ("cache", &[]),
            ("worker", &["app"]),
        ]);
        assert_eq!(
            levels(&g).unwrap(),
            vec![vec!["db", "cache"], vec!["app"], vec!["worker"]]
        );
    }

    #[test]
    fn a_cycle_is_reported_whole() {
        let g = graph(&[
            ("app", &["db"]),
            ("db", &["migrate"]),
            ("migrate", &["app"]),
            ("cache", &[]),
        ]);
        assert_eq!(levels(&g).unwrap_err(), vec!["app", "db", "migrate", "app"]);
    }

    #[test]
    fn a_self_dependency_is_a_cycle() {
        let g = graph(&[("app", &["app"])]);
        assert_eq!(levels(&g).unwrap_err(), vec!["app", "app"]);
    }
}
