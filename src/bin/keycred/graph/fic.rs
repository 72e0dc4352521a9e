//! `keycred graph fic add|list|remove`: an application's federated identity credentials through
//! Graph, with the subjects people get wrong built for them (`--github-repo` with a branch,
//! environment, pull request or tag; `--k8s-service-account`) and Graph's rules checked before
//! anything is sent.

use super::{Common, ProofAud};
use crate::common::GraphAccessArgs;
use crate::output::{out_line, print_pairs};
use crate::{Ctx, TenantArgs};
use keycred::fic::subjects::{self, GithubScope};
use keycred::fic::FederatedIdentityCredential;
use keycred::graph::federated;
use keycred::{Error, Result};

/// The application and how to reach Graph.
#[derive(clap::Args, Debug, Clone)]
pub struct FicCommon {
    /// The app whose federated credentials change (--client-id, or --app-id), its tenant and authority
    #[command(flatten)]
    pub tenant: TenantArgs,
    #[command(flatten)]
    pub access: GraphAccessArgs,
}

impl FicCommon {
    fn common(&self) -> Common {
        Common { tenant: self.tenant.clone(), access: self.access.clone(), proof_aud: ProofAud::AadGraph, patch: false }
    }
}

/// Subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum FicCmd {
    /// List the application's federated identity credentials
    List(FicCommon),
    /// Add a federated identity credential (Graph's rules checked first)
    Add(Box<AddArgs>),
    /// Remove a federated identity credential by name
    Remove {
        #[command(flatten)]
        common: FicCommon,
        /// The credential's name
        #[arg(long)]
        name: String,
    },
}

/// `keycred graph fic add`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["subject", "github_repo", "k8s_service_account"])))]
pub struct AddArgs {
    #[command(flatten)]
    common: FicCommon,
    /// The credential's name (unique per app; letters, digits, '-' and '_')
    #[arg(long)]
    name: String,
    /// The external issuer, exactly as its tokens' iss (default for --github-repo: GitHub Actions')
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// The subject, exactly as its tokens' sub
    #[arg(long, value_name = "SUB")]
    subject: Option<String>,
    /// GitHub Actions: ORG/REPO (with --branch, --environment, --pull-request or --tag)
    #[arg(long, value_name = "ORG/REPO")]
    github_repo: Option<String>,
    /// With --github-repo: workflow runs on this branch
    #[arg(long, requires = "github_repo", group = "gh_scope")]
    branch: Option<String>,
    /// With --github-repo: jobs that name this deployment environment
    #[arg(long, requires = "github_repo", group = "gh_scope")]
    environment: Option<String>,
    /// With --github-repo: pull-request workflow runs
    #[arg(long, requires = "github_repo", group = "gh_scope")]
    pull_request: bool,
    /// With --github-repo: workflow runs on this tag
    #[arg(long, requires = "github_repo", group = "gh_scope")]
    tag: Option<String>,
    /// Kubernetes: NAMESPACE/NAME of the service account (with --issuer, the cluster's OIDC issuer URL)
    #[arg(long, value_name = "NAMESPACE/NAME", requires = "issuer")]
    k8s_service_account: Option<String>,
    /// The accepted audience
    #[arg(long, default_value = keycred::fic::DEFAULT_AUDIENCE)]
    audience: String,
    /// Free text
    #[arg(long)]
    description: Option<String>,
}

impl AddArgs {
    /// The issuer and subject the arguments name.
    fn issuer_and_subject(&self) -> Result<(String, String)> {
        if let Some(repo) = &self.github_repo {
            let ok = repo.split('/').count() == 2 && repo.split('/').all(|p| !p.is_empty());
            if !ok {
                return Err(Error::input(format!("--github-repo '{repo}': expected ORG/REPO"))
                    .with_hint("for example --github-repo octo-org/octo-repo --branch main"));
            }
            let scope = match (&self.branch, &self.environment, self.pull_request, &self.tag) {
                (Some(b), _, _, _) => GithubScope::Branch(b.clone()),
                (_, Some(e), _, _) => GithubScope::Environment(e.clone()),
                (_, _, true, _) => GithubScope::PullRequest,
                (_, _, _, Some(t)) => GithubScope::Tag(t.clone()),
                _ => {
                    return Err(Error::input("--github-repo needs what the token is for")
                        .with_hint("add --branch NAME, --environment NAME, --pull-request or --tag NAME"))
                }
            };
            let issuer = self.issuer.clone().unwrap_or_else(|| subjects::GITHUB_ISSUER.to_string());
            return Ok((issuer, subjects::github(repo, &scope)));
        }
        let issuer = self.issuer.clone().ok_or_else(|| {
            Error::input("no issuer given").with_hint("pass --issuer URL, exactly as the tokens' iss claim")
        })?;
        if let Some(sa) = &self.k8s_service_account {
            let (ns, name) = sa.split_once('/').filter(|(n, s)| !n.is_empty() && !s.is_empty()).ok_or_else(|| {
                Error::input(format!("--k8s-service-account '{sa}': expected NAMESPACE/NAME"))
                    .with_hint("for example --k8s-service-account default/workload-identity-sa")
            })?;
            return Ok((issuer, subjects::kubernetes(ns, name)));
        }
        Ok((issuer, self.subject.clone().unwrap_or_default()))
    }
}

/// Runs `keycred graph fic ...`.
pub fn run(cmd: &FicCmd, ctx: &Ctx) -> Result<()> {
    match cmd {
        FicCmd::List(c) => list(c, ctx),
        FicCmd::Add(a) => add(a, ctx),
        FicCmd::Remove { common, name } => {
            let s = common.common().open()?;
            s.rt.block_on(federated::remove(&s.graph, &s.app.app_id, name))?;
            if ctx.json() {
                ctx.print_json(&serde_json::json!({"removed": name, "appId": s.app.app_id}));
            } else {
                out_line(&format!("removed federated identity credential {name} from application {}", s.app.app_id));
            }
            Ok(())
        }
    }
}

/// The application's app id and federated identity credentials, through Graph.
pub fn list_federated(c: &FicCommon) -> Result<(String, Vec<FederatedIdentityCredential>)> {
    let s = c.common().open()?;
    let all = s.rt.block_on(federated::list(&s.graph, &s.app.app_id))?;
    Ok((s.app.app_id.clone(), all))
}

fn list(c: &FicCommon, ctx: &Ctx) -> Result<()> {
    let s = c.common().open()?;
    let all = s.rt.block_on(federated::list(&s.graph, &s.app.app_id))?;
    if ctx.json() {
        ctx.print_json(&all);
        return Ok(());
    }
    out_line(&format!("application {}: {} federated identity credential(s)", s.app.app_id, all.len()));
    for f in &all {
        let who = f.subject.clone().unwrap_or_else(|| "(claims-matching expression)".into());
        out_line(&format!("{}  {}  {}  {}", f.name, f.issuer, who, f.audiences.join(",")));
    }
    Ok(())
}

fn add(a: &AddArgs, ctx: &Ctx) -> Result<()> {
    let (issuer, subject) = a.issuer_and_subject()?;
    let mut c = FederatedIdentityCredential::new(&a.name, &issuer, &subject);
    c.audiences = vec![a.audience.clone()];
    c.description = a.description.clone();
    // Checked on their own before any request: a malformed one costs no token.
    keycred::fic::rules::check_shape(&c)
        .map_err(|b| Error::input(format!("Graph would refuse this federated identity credential: {}", b.message)))?;
    if let Some(w) = subjects::case_warning(&subject) {
        eprintln!("keycred: warning: {w}");
    }
    let s = a.common.common().open()?;
    let created = s.rt.block_on(federated::add(&s.graph, &s.app.app_id, &c))?;
    if ctx.json() {
        ctx.print_json(&created);
    } else {
        print_pairs(&[
            ("added", created.name.clone()),
            ("id", created.id.clone().unwrap_or_default()),
            ("issuer", created.issuer.clone()),
            ("subject", created.subject.clone().unwrap_or_default()),
            ("audience", created.audiences.join(",")),
        ]);
    }
    Ok(())
}
