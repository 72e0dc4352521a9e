//! keycred's integration tests, gathered in one binary (as ripgrep does) so the crate links once.
//!
//! The `*_support` modules and `common` are helpers; every other module is a test file of its own,
//! named by what it covers. The interop tests (Python clients, `tests/interop/`) run from
//! `cargo xtask interop`.

mod common;
mod emulator_support;
mod fleet_support;
mod hardening_support;
mod rotation_support;
mod token_support;
mod tools_support;

mod cert_formats;
mod cert_names;
mod cert_new;
mod cert_openssl;
mod cert_pfx_consumers;
mod check_cli;
mod deep_input;
mod demo_cli;
mod emulator_app_policy;
mod emulator_assertion_headers;
mod emulator_browser;
mod emulator_cli_flows;
mod emulator_consent_pages;
mod emulator_entra_scopes;
mod emulator_entra_signin;
mod emulator_entra_tokens;
mod emulator_pkce;
mod emulator_sign_in_bounds;
mod emulator_sign_in_report;
mod emulator_tenant;
mod emulator_tokens;
mod emulator_validation;
mod first_steps;
mod fleet_audit_csv_cells;
mod fleet_cli;
mod fleet_concurrent_runs;
mod fleet_emulator;
mod fleet_journal_trust;
mod fsio_links;
mod graph_azure_cli;
mod graph_batch_envelope;
mod graph_cli;
mod graph_emulator;
mod graph_entra_fidelity;
mod graph_filter_limits;
mod graph_permissions;
mod graph_tenant;
mod hardening_corpus;
mod hardening_crash;
mod hardening_fuzz_regressions;
mod hardening_hygiene;
mod hardening_jwt;
mod hardening_load;
mod hardening_review_emulator;
mod hardening_review_files;
mod json_error_codes;
mod manifest_cli;
mod manifest_edit;
mod manifest_permissions;
mod manifest_portal;
mod manifest_thumbprint_selection;
mod manifest_usable;
mod private_directories;
mod readme_examples;
mod rotation_cli;
mod rotation_library;
mod rotation_safety;
mod tenant_refused;
mod token_assertion;
mod token_cli;
mod token_hygiene;
mod token_inputs;
mod token_requests;
mod token_tls;
