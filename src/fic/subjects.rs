//! The subjects external issuers put in their tokens, built from what users know (a repository
//! and a branch, a namespace and a service account), since a subject typed by hand is the most
//! common reason a federated sign-in fails (700213, and 7002138 for letter case).
//!
//! GitHub Actions (GitHub's OpenID Connect reference, "Example subject claims"):
//! `repo:ORG/REPO:ref:refs/heads/BRANCH`, `repo:ORG/REPO:environment:NAME`,
//! `repo:ORG/REPO:pull_request`, `repo:ORG/REPO:ref:refs/tags/TAG`. Kubernetes projected
//! service-account tokens: `system:serviceaccount:NAMESPACE:NAME`.

/// GitHub Actions' OpenID Connect issuer.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// What a GitHub Actions subject is scoped to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GithubScope {
    /// A workflow run on a branch.
    Branch(String),
    /// A job that names a deployment environment (the environment wins over the branch).
    Environment(String),
    /// A pull request's workflow run.
    PullRequest,
    /// A workflow run on a tag.
    Tag(String),
}

/// The subject of GitHub Actions tokens for `repo` (`ORG/REPO`) in `scope`.
pub fn github(repo: &str, scope: &GithubScope) -> String {
    match scope {
        GithubScope::Branch(b) => format!("repo:{repo}:ref:refs/heads/{b}"),
        GithubScope::Environment(e) => format!("repo:{repo}:environment:{e}"),
        GithubScope::PullRequest => format!("repo:{repo}:pull_request"),
        GithubScope::Tag(t) => format!("repo:{repo}:ref:refs/tags/{t}"),
    }
}

/// The subject of a Kubernetes service account's projected token.
pub fn kubernetes(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// A warning when `subject` has upper-case letters: Entra compares subjects case-sensitively, and
/// the issuer spells names as they are registered there (GitHub keeps the owner's and the
/// repository's own case), so the case must be exactly the issuer's.
pub fn case_warning(subject: &str) -> Option<String> {
    subject.chars().any(char::is_uppercase).then(|| {
        format!(
            "the subject '{subject}' has upper-case letters: Entra compares subjects case-sensitively (since \
             August 2024), so they must be spelled exactly as the issuer puts them in its tokens"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_subjects_issuers_send() {
        let r = "octo-org/octo-repo";
        assert_eq!(github(r, &GithubScope::Branch("main".into())), "repo:octo-org/octo-repo:ref:refs/heads/main");
        assert_eq!(
            github(r, &GithubScope::Environment("Production".into())),
            "repo:octo-org/octo-repo:environment:Production"
        );
        assert_eq!(github(r, &GithubScope::PullRequest), "repo:octo-org/octo-repo:pull_request");
        assert_eq!(github(r, &GithubScope::Tag("v1".into())), "repo:octo-org/octo-repo:ref:refs/tags/v1");
        assert_eq!(kubernetes("default", "workload-identity-sa"), "system:serviceaccount:default:workload-identity-sa");
        assert!(case_warning("repo:Octo/r:pull_request").is_some());
        assert!(case_warning("repo:octo/r:pull_request").is_none());
    }
}
