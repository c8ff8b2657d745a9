//! Issue 11's hardening: one black-box test file per finding, each proving over REST (or
//! the CLI) that what an attacker or a careless user did before no longer works.
//!
//! | file | finding |
//! |---|---|
//! | `kubeconfig.rs` | 1. a pasted kubeconfig runs or reads nothing on the server |
//! | `escalation.rs` | 2. no way to admin through the plugin console, the user API or token scopes |
//! | `authorizer.rs` | 3. a slow authorizer fails its own calls closed, never the platform |
//! | `throttle.rs` | 4. login throttling that counts every attempt and cannot lock a user out |
//! | `atomic.rs` | 5. uniqueness and last-owner rules hold under concurrent requests |
//! | `permissions.rs` | 6. deletes take every binding at or below the scope with them |
//! | `audit_log.rs` | 7. the audit log cannot be skipped or flooded and holds no secrets |
//! | `kv_quota.rs` | 8. plugin kv namespaces have a total quota |
//! | `plugin_admin.rs` | 9. upgrade, configure, install and keygen done safely |

mod atomic;
mod audit_log;
mod authorizer;
mod escalation;
mod kubeconfig;
mod kv_quota;
mod permissions;
mod plugin_admin;
mod throttle;
