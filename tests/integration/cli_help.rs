//! What `--help` and the shell completions offer is what the commands take: `-o csv` is listed
//! by `fleet audit` alone (the only command that writes CSV; the others refuse it), and the
//! completions list no hidden subcommand (`man-page` is for `cargo xtask dist`).

use crate::rotation_support::cli;

#[test]
fn csv_output_is_listed_only_where_it_is_taken() {
    for cmd in [&["--help"][..], &["token", "--help"], &["show", "--help"], &["fleet", "rotate", "--help"]] {
        let out = cli(cmd, &[]);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(!out.stdout.to_lowercase().contains("csv"), "{cmd:?}: {}", out.stdout);
        assert!(out.stdout.contains("json"), "{cmd:?}: {}", out.stdout);
    }
    let audit = cli(&["fleet", "audit", "--help"], &[]);
    assert!(audit.stdout.contains("-o csv"), "{}", audit.stdout);
    // Still refused where it does not apply, naming the command that takes it.
    let out = cli(&["token", "-o", "csv"], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("-o csv is only for `keycred fleet audit`"), "{}", out.stderr);
}

#[test]
fn completions_offer_no_hidden_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = cli(&["completions", shell], &[]);
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        assert!(!out.stdout.contains("man-page"), "{shell}: man-page offered");
        for visible in ["consent-url", "fleet", "emulate", "output"] {
            assert!(out.stdout.contains(visible), "{shell}: {visible} missing");
        }
    }
    // The hidden subcommand itself still works for `cargo xtask dist`.
    let man = cli(&["man-page"], &[]);
    assert_eq!(man.code, 0, "{man:?}");
    assert!(man.stdout.contains(".TH keycred 1"), "{}", &man.stdout[..200.min(man.stdout.len())]);
}
