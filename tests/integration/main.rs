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
mod cli_help;
mod consent_redirects;
mod demo_cli;
mod emulator_browser;
mod emulator_cli_flows;
mod emulator_scripts;
mod emulator_tenant;
mod emulator_tokens;
mod emulator_validation;
mod first_steps;
mod fleet_cli;
mod fleet_emulator;
mod fleet_output;
mod fsio_links;
mod graph_azure_cli;
mod graph_cli;
mod graph_emulator;
mod graph_tenant;
mod hardening_corpus;
mod hardening_crash;
mod hardening_fuzz_regressions;
mod hardening_hygiene;
mod hardening_jwt;
mod hardening_load;
mod hardening_review_emulator;
mod hardening_review_files;
mod hints_fit_the_situation;
mod manifest_cli;
mod manifest_edit;
mod manifest_portal;
mod manifest_usable;
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
mod token_verification;
