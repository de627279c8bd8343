//! The command line: global options, one subcommand per file under `commands/`.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands::{self, Globals};

/// The phase map and the exit codes, below the command list of `canary --help`.
fn after_help() -> String {
    let mut text = String::from(
        "A release walks these phases, each ending with a deploy to every environment:\n",
    );
    for e in &crate::workflow::PHASES[..8] {
        text.push_str(&format!("  {:<12}  {}\n", e.phase.name(), e.summary));
    }
    text.push_str(
        "\nExit codes: 0 success; 2 bad usage or bad input; 3 refused: the workflow does not\n\
         allow that now (the message names what comes first), `canary check` finds an error\n\
         where the step would write, deploy or start, or the metric gate failed; 4 the metric\n\
         gate cannot judge yet (too little v2 traffic or time; run again later); 75 busy, run\n\
         it again: another canary holds the release (or the journal) or pushed its steps from\n\
         another clone, a file changed under canary's plan, or a git process holds the\n\
         repository's index (index.lock); 1\n\
         anything else. On any error nothing changed, except what the message says was left\n\
         (a push rejected after the commit, say), and a release set to --gate-auto-abort\n\
         aborts on a failed gate.\n\n\
         Example:\n  canary demo --yes        # a whole release on a copy of the seed example\n  \
         canary start my-service --repo . --namespace relational-data \\\n      \
         --v1-image registry/my-service@sha256:<64 hex digits> \\\n      \
         --host staging=my-service-staging.example.com --host production=my-service.example.net\n  \
         canary next              # one step at a time, until done\n  \
         canary status --json",
    );
    text
}

/// Guides a weight-based canary release of one service on Kubernetes with Istio, the GitOps
/// way: canary edits the repository files for each step, shows the diff, asks before writing,
/// waits for each deploy, and journals every action so that `canary next` resumes where it
/// stopped.
#[derive(Debug, Parser)]
#[command(name = "canary", version, after_help = after_help(), max_term_width = 100)]
pub struct Cli {
    /// The journal file [default: canary/journal.db in the XDG data directory]
    #[arg(long, global = true, env = "CANARY_JOURNAL", value_name = "PATH")]
    pub journal: Option<PathBuf>,

    /// Print no status lines (what canary is doing and did); notes, diffs, questions, tables
    /// and errors still print
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

// Deferred: each command's arguments are built only for the command run (or for help), not
// for all of them on every run.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Open a release of SERVICE in a GitOps repository.
    ///
    /// SERVICE is the `name:` in the repository's gap/gap.yaml.
    ///
    /// Environments are deployed in the order given; the last one is production, the one whose
    /// weight is ramped. Each needs at least one public host; the in-cluster host
    /// SERVICE-web.NAMESPACE.svc.cluster.local is always added. On a terminal, missing values are
    /// asked for.
    ///
    /// Example:
    ///   canary start my-service --repo ~/src/deploy --namespace relational-data \
    ///     --v1-image registry.example/my-service@sha256:be6b...f65f \
    ///     --host staging=my-service-staging.example.com --host production=my-service.example.net
    #[command(verbatim_doc_comment)]
    // Boxed: its flags outweigh every other command's.
    Start(Box<commands::start::Args>),
    /// Take exactly one step of a release and say what comes next.
    ///
    /// Before writing, it shows what the step does and the diff of every file, and asks. A deploy
    /// step waits for the operator to confirm the deploy or, where the environment has a kubeconfig
    /// context, until its cluster shows the deploy (objects present or gone, live weights equal to
    /// the files, v1 pods ready on the pinned digest). Where production has a Prometheus, its v2
    /// weight goes up, and its ramp ends, only once the metric gate passes (docs/gate.md): a failed
    /// gate refuses (exit 3); one that cannot judge yet waits, or with --yes exits 4. A step interrupted by Ctrl-C, a crash or a
    /// reboot is finished first, without applying any edit twice.
    ///
    /// Examples:
    ///   canary next                     # the only release in flight
    ///   canary next my-service --dry-run
    ///   canary next my-service --yes --commit   # in a pipeline
    ///   canary next my-service --timeout 30m    # a slow GitOps sync
    #[command(verbatim_doc_comment)]
    Next(commands::next::Args),
    /// Take every step of a release, in order, until it is done.
    ///
    /// The same steps as `next`, one after the other: each edit is written, committed and pushed,
    /// each deploy waited for on its cluster, the ramp gated where production has a Prometheus.
    /// Deploys are verified: every environment needs a kubeconfig context (`canary context`), or
    /// must be named with --trust-deploys, which takes the operator's word (or --yes) for its
    /// deploys. A run stopped by Ctrl-C, a crash or --timeout goes on where it stopped when run
    /// again; nothing is done twice.
    ///
    /// Exit codes: 0 done (or at --until), 3 stopped (a refusal, or a failed gate), 75 another
    /// canary process is working on the release, 1 an error or --timeout.
    ///
    /// Examples:
    ///   canary run my-service --yes                          # in a pipeline
    ///   canary run my-service --until ramp                   # deploy v2, then stop
    ///   canary run my-service --yes --trust-deploys staging  # staging has no context
    ///   canary run my-service --yes --staging-gate           # staging's metrics test v2
    #[command(verbatim_doc_comment)]
    Run(commands::run::Args),
    /// Show where a release stands and what comes next.
    ///
    /// Its phase, its next step, and each environment's v2 weight as the repository files say it;
    /// with --live, also as each cluster (with a kubeconfig context) has it, and each Argo CD
    /// Application's sync and health. Without SERVICE: the
    /// only release in flight or, when none is, the one that moved last.
    ///
    /// Examples:
    ///   canary status
    ///   canary status my-service --json
    ///   canary status my-service --live
    #[command(verbatim_doc_comment)]
    Status(commands::status::Args),
    /// List the releases in flight, one row each.
    ///
    /// Each environment's v2 weight is the one canary last wrote, as the journal recorded it:
    /// listing reads no repository file. `canary status SERVICE` reads the files themselves.
    ///
    /// Examples:
    ///   canary list
    ///   canary list --all --json
    #[command(verbatim_doc_comment)]
    List(commands::list::Args),
    /// Set an environment's v2 weight; v1 gets the rest.
    ///
    /// The weight is written to ENV's VirtualService patch file.
    ///
    /// Allowed for staging (every environment but the last) during deploy-v2 and ramp, to test v2,
    /// and for production during ramp. The deploy of that environment follows as the next step.
    /// Production's weight goes up (live or in the file) only once v2 at its current weight is
    /// deployed there and observed (the ramp's observation, which `canary next` asks for); going
    /// down is always allowed.
    ///
    /// With --live, the live VirtualService in ENV's cluster is patched instead (the seed's
    /// short-term edit): an RFC 6902 JSON Patch that first tests the current weights, so that a
    /// concurrent change makes it fail whole. The file keeps its weights, and a GitOps sync with
    /// self-heal puts them back.
    ///
    /// Examples:
    ///   canary weight my-service staging 50
    ///   canary weight my-service production 30 --live
    #[command(verbatim_doc_comment)]
    Weight(commands::weight::Args),
    /// Send all traffic back to where it was last known good.
    ///
    /// In route-to-v1, once its edit has moved the routes to v1 (the pinned v1 misbehaves): every
    /// VirtualService patch goes back to 100% v2, as add-routing left it. The deploys follow as the
    /// next steps, then the release is back at the v1 image check, where web-v1 may be re-pinned
    /// before traffic moves to it again.
    ///
    /// In deploy-v2 and ramp (v2 misbehaves): every VirtualService patch goes back to 100% v1. The
    /// deploys follow as the next steps, then v2 is deployed (fixed) and tested again before the
    /// ramp starts over.
    ///
    /// In coexistence, the note after it says that web's switch, set back to its v1 value, is the
    /// second line of defence.
    ///
    /// Before route-to-v1 has moved a route, and from cleanup-1 on, there is nothing to go back to,
    /// and abort is refused.
    ///
    /// Example:
    ///   canary abort my-service
    #[command(verbatim_doc_comment)]
    Abort(commands::abort::Args),
    /// End a release started by mistake, or one that will not go on.
    ///
    /// While no file of the release is written, it ends at once. Once canary has written files,
    /// they must first be as they were before the release's first write (every file canary wrote
    /// back to what the repository held, committed): after `canary abort` and the cleanups, or
    /// put back by hand. Otherwise --keep-files ends it all the same, leaves the files as they are
    /// and lists them: what was deployed from them stays deployed, and is yours to undo.
    ///
    /// The journal records who cancelled it, when, and at which step. A cancelled release is no
    /// longer in flight: `canary list --all` shows it, and `canary start SERVICE` may open a new
    /// one.
    ///
    /// Examples:
    ///   canary cancel my-service
    ///   canary cancel my-service --keep-files --yes
    #[command(verbatim_doc_comment)]
    Cancel(commands::cancel::Args),
    /// Report where each cluster differs from the repository files.
    ///
    /// Reads the cluster of every environment that has a kubeconfig context (or only ENV's) and
    /// reports each difference from the repository files: the web and web-v1 Deployments and
    /// their ready replicas, the image digest the v1 pods run against the pinned one, the live
    /// VirtualService weights against the patch file, the DestinationRule and its subsets, the
    /// Service selector and web-v1's AuthorizationPolicy. Where the environment names its Argo CD
    /// Application, also its sync status, revision and health: an error unless it is Synced at
    /// canary's newest commit (or a later one) and Healthy, an info otherwise.
    ///
    /// Exit 0 when the clusters match the repository, 1 when they do not (or cannot be read).
    ///
    /// Examples:
    ///   canary verify my-service
    ///   canary verify my-service --env production --json
    #[command(verbatim_doc_comment)]
    Verify(commands::verify::Args),
    /// Judge v2 against v1 from Prometheus now; moves nothing.
    ///
    /// Reads production's Prometheus over the time since its weight was deployed (at least the
    /// release's --gate-window), from Istio's istio_requests_total and
    /// istio_request_duration_milliseconds_bucket: v2's requests, its success rate against the
    /// limit and against v1's, its latency against the limit and against v1's, and the team's
    /// checks (docs/gate.md). Each statistical check fails only once its evidence over the
    /// release reaches its share of the release's error budget (--gate-confidence); a pass needs
    /// v2's error rate shown within the margin of v1's. The evaluation is journaled.
    ///
    /// Exit codes: 0 the gate passes; 3 it fails, or cannot judge what Prometheus answered; 4 not
    /// yet (too little evidence either way, or the weight not deployed for the window); 1
    /// Prometheus could not be asked.
    ///
    /// With --staging it judges v2 alone on staging's Prometheus against the fixed limits, as `canary
    /// run --staging-gate` does to answer whether v2 was tested there: it passes only once v2's
    /// error rate and its share of requests slower than the p99 limit are shown within the limits.
    ///
    /// With --watch it evaluates again as traffic comes in, the evidence on one live line, until
    /// the gate passes, fails or cannot judge (or --timeout passes); the release's locks are let
    /// go between evaluations, so that `canary abort` is never kept waiting.
    ///
    /// Examples:
    ///   canary gate my-service
    ///   canary gate my-service --json
    ///   canary gate my-service --watch --timeout 30m
    ///   canary gate my-service --staging --watch
    #[command(verbatim_doc_comment)]
    Gate(commands::gate::Args),
    /// Set an environment's kubeconfig context and Argo CD Application.
    ///
    /// The context reaches ENV's cluster; --unset removes it. Two environments share one only
    /// with --shared-context.
    ///
    /// With a context, canary checks each deploy to ENV against the cluster, `canary verify` reads
    /// it and `canary weight --live` edits it. The context is looked up in the kubeconfig as kubectl
    /// does (KUBECONFIG, several files allowed) each time canary talks to the cluster.
    ///
    /// With an Argo CD Application (--argocd NAMESPACE/NAME, read through the context), a deploy to
    /// ENV also waits until the Application is Synced at canary's commit, or a later one, and
    /// Healthy; --no-argocd removes it.
    ///
    /// With a Prometheus (--prometheus URL), the metric gate judges ENV's weights from its Istio
    /// metrics (docs/gate.md); --no-prometheus removes it.
    ///
    /// ENV's public hosts (--host, repeatable) change until add-routing writes its VirtualService
    /// patch, which lists them; after that, a change is refused.
    ///
    /// Each change is journaled; `canary log` shows it, before and after.
    ///
    /// Examples:
    ///   canary context my-service production prod-eu-1
    ///   canary context my-service production --argocd argocd/my-service-production
    ///   canary context my-service staging --no-argocd --unset
    ///   canary context my-service production --prometheus cluster:istio-system/prometheus:9090
    ///   canary context my-service staging --host my-service-staging.example.com
    #[command(verbatim_doc_comment)]
    Context(commands::context::Args),
    /// Change a release's namespace, metric gate limits or webhooks.
    ///
    /// The namespace changes until add-routing writes the files that name it (the DestinationRule
    /// and the VirtualService patches, through the Service's in-cluster host); after that, a change
    /// is refused, naming the file and the step that wrote it. The gate's limits change at any
    /// time, and apply from the next evaluation on. An environment's context, Argo CD Application,
    /// Prometheus and hosts are `canary context`'s.
    ///
    /// Each change is journaled; `canary log` shows it, before and after.
    ///
    /// Examples:
    ///   canary settings my-service --namespace relational-data
    ///   canary settings my-service --gate-min-requests 50 --gate-p99-max-ms 800
    #[command(verbatim_doc_comment)]
    Settings(commands::settings::Args),
    /// Check canary's objects in a repository, offline.
    ///
    /// The objects are checked as `istioctl analyze` would check them.
    ///
    /// Every object validates against the Istio CRD schemas and Kubernetes' Service type; the
    /// routes name only subsets the DestinationRule defines; each subset selects the pods of one
    /// deployment; the Service patch selects web and web-v1 only; weights are whole numbers that
    /// add up to 100; web-v1 admits what web admits plus the ingress and runs a pinned digest.
    /// Nothing may stand in the way of a release: web takes ingress traffic, no other patch sets
    /// what canary's patches set, no other deployment carries the labels canary selects by, web
    /// defines no anchor. Where the journal knows the release, the files must agree with its
    /// position. Each finding has a stable code (docs/check.md lists them). Exit 0 when no error
    /// is found, 1 when one is.
    ///
    /// Examples:
    ///   canary check                      # the only release in flight
    ///   canary check my-service --json
    ///   canary check --repo ~/src/deploy  # no release needed
    #[command(verbatim_doc_comment)]
    Check(commands::check::Args),
    /// Show the journal of a release, oldest event first.
    ///
    /// Every step started and done, every file written with its hash, every deploy confirmed,
    /// weight changed and abort, with time and operator. A confirmed deploy says how it was
    /// confirmed: verified against the cluster (its objects, and the Argo CD Application at the
    /// revision it reported), or by the operator's word (on a terminal, by --yes, or with
    /// --no-verify).
    ///
    /// Examples:
    ///   canary log                # the only release in flight
    ///   canary log my-service
    ///   canary log my-service --json
    #[command(verbatim_doc_comment)]
    Log(commands::log::Args),
    /// Walk a whole release on a copy of the seed's example repository.
    ///
    /// With --method coexistence, web and web-v1 run one image and the environment variable
    /// IMPLEMENTATION (v1 or v2) selects the code path; deploy-v2 flips web's to v2.
    ///
    /// The copy goes into a new temporary directory, with a journal of its own unless --journal
    /// (or CANARY_JOURNAL) names one. Interactive on a terminal, or unattended with --yes.
    ///
    /// Example:
    ///   canary demo --yes
    ///   canary demo --yes --method coexistence
    #[command(verbatim_doc_comment)]
    Demo(commands::demo::Args),
    /// Explain a phase, the two methods, or the map of phases.
    ///
    /// `methods`: succession and coexistence, and when to choose which.
    ///
    /// A phase: what it does, the files it touches, why it comes where it does, and the words of
    /// the seed process it implements. Without a phase: the whole map, with the position of the
    /// release in flight marked.
    ///
    /// Examples:
    ///   canary explain
    ///   canary explain cleanup-3
    ///   canary explain methods
    ///   canary explain deploy-v2 --method coexistence
    #[command(verbatim_doc_comment)]
    Explain(commands::explain::Args),
    /// Check or export the journal itself.
    ///
    /// Examples:
    ///   canary journal check
    ///   canary journal export --json > canary-journal.json
    #[command(verbatim_doc_comment)]
    Journal(commands::journal::Args),
    /// Print a shell completion script.
    ///
    /// Examples:
    ///   canary completions bash > ~/.local/share/bash-completion/completions/canary
    ///   canary completions zsh > ~/.zfunc/_canary
    ///   canary completions fish > ~/.config/fish/completions/canary.fish
    #[command(verbatim_doc_comment)]
    Completions(commands::completions::Args),
    /// Print the manual page (roff).
    ///
    /// It is the one page canary has: it lists the subcommands by name, and `canary SUBCOMMAND
    /// --help` describes each.
    ///
    /// Example:
    ///   canary man > ~/.local/share/man/man1/canary.1
    #[command(verbatim_doc_comment)]
    Man(commands::completions::ManArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let command = match cli.command {
        // The demo needs no default journal path: unless one is named, its journal goes beside
        // its repository.
        Command::Demo(args) => return commands::demo::run(cli.journal, cli.quiet, args),
        command => command,
    };
    let globals = Globals::from_env(cli.journal, cli.quiet)?;
    crate::report::set_journal(&globals.journal, crate::journal::default_path().as_deref());
    match command {
        Command::Start(args) => commands::start::run(&globals, *args),
        Command::Next(args) => commands::next::run(&globals, args),
        Command::Run(args) => commands::run::run(&globals, args),
        Command::Status(args) => commands::status::run(&globals, args),
        Command::List(args) => commands::list::run(&globals, args),
        Command::Weight(args) => commands::weight::run(&globals, args),
        Command::Abort(args) => commands::abort::run(&globals, args),
        Command::Cancel(args) => commands::cancel::run(&globals, args),
        Command::Verify(args) => commands::verify::run(&globals, args),
        Command::Gate(args) => commands::gate::run(&globals, args),
        Command::Context(args) => commands::context::run(&globals, args),
        Command::Settings(args) => commands::settings::run(&globals, args),
        Command::Check(args) => commands::check::run(&globals, args),
        Command::Log(args) => commands::log::run(&globals, args),
        Command::Demo(_) => unreachable!("the demo ran above"),
        Command::Explain(args) => commands::explain::run(&globals, args),
        Command::Journal(args) => commands::journal::run(&globals, args),
        Command::Completions(args) => commands::completions::run(args, Cli::command()),
        Command::Man(args) => commands::completions::man(args, Cli::command()),
    }
}
