#!/usr/bin/env bash
# The benchmark of issue 6: a big journal, a big repository, and every command near the floor.
#
#   bench/run.sh            build a journal of 10,000 releases and 1,000,000 events, then time
#                           canary's read commands against the sqlite3 tool on the same file,
#                           `next --dry-run` against `git status` and 5,000-line steps against the
#                           seed-sized one, each also counted in instructions (callgrind), with
#                           peak memory, and the watch latency of checked deploys
#                           (benches/watch_latency.rs) (minutes)
#   bench/run.sh --smoke    the same journal at 1/10 the size, each command run once and its
#                           output checked, no timing, and one release of the watch latency
#                           benchmark (what .ci/run calls; ~1 min)
#
# Environment: BENCH_DIR (work directory, kept; default a new temporary one, removed),
# BENCH_ROUNDS (rounds, default 5), BENCH_RUNS (hyperfine runs per command and round, default
# 20), BENCH_WARMUP (default 3).
#
# How the journal is made (see "Performance" in README.md):
#  1. canary itself walks two real releases of one template service, `bench-template`, in a
#     copy of the seed example, into a template journal: one to the end (102 events: the
#     whole walk plus two staging weight tests in deploy-v2) and one that stops in the ramp at
#     25% (82 events: the same walk so far plus more staging weight tests).
#  2. One SQL statement per table copies those rows for S services `svc-0000`... and 10
#     generations of releases each: 9 finished, the latest in flight, so
#     releases = 10 S and events = S (9 * 102 + 82) = 1000 S. A generation's releases run
#     side by side, so their events interleave in the table as a busy journal's do.
#     The service name is substituted wherever the template's appears (config, hosts, image,
#     commit messages); timestamps are shifted by a week per generation; ids are renumbered.
#     What stays the template's: file hashes and commit ids (the files name the service, so a
#     real release of svc-0001 hashes other bytes), and the repository (every copy of a
#     release points at the template's repository in the same state, so status reads real
#     files).
#  3. A third release, of `svc-0001` in its own repository, is walked by canary the same way
#     into its own journal, and its rows are compared with the generated svc-0001 release:
#     identical once ids, timestamps, hashes, commit ids and the repository path are masked.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
smoke=false
case "${1:-}" in
  --smoke) smoke=true ;;
  "") ;;
  *) echo "usage: bench/run.sh [--smoke]" >&2; exit 2 ;;
esac

# --- what the script needs --------------------------------------------------------------------
need=()
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
command -v git >/dev/null 2>&1 || need+=(git)
if ! $smoke; then
  command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
  command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
  [ -x /usr/bin/time ] || need+=(time)
  command -v jq >/dev/null 2>&1 || need+=(jq)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if $smoke; then
  services=100
  (cd "$root" && cargo build --locked --quiet)
  canary=${CARGO_TARGET_DIR:-$root/target}/debug/canary
else
  services=1000
  (cd "$root" && cargo build --locked --release --quiet)
  canary=${CARGO_TARGET_DIR:-$root/target}/release/canary
fi
generations=10
finished_events=102
in_flight_events=82

if [ -n "${BENCH_DIR:-}" ]; then
  work=$BENCH_DIR
  rm -rf "$work"
  mkdir -p "$work"
else
  work=$(mktemp -d -t canary-bench-XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi
work=$(cd "$work" && pwd -P)
if ! $smoke; then
  # Timed as installed (`cargo install` copies the binary), not as the linker left it: how a
  # binary's pages came into the page cache changes what starting it costs. Measured on the
  # same bytes at a deploy's dry run: 418 page faults run as lld wrote it, 381 copied, and
  # about 15% of the time between the two. The baselines (git, sqlite3) run installed too.
  mkdir -p "$work/bin"
  install -m 755 "$canary" "$work/bin/canary"
  canary=$work/bin/canary
fi
# The benchmark's own HOME keeps the user's git and canary settings out; rustup and cargo find
# their toolchain and registry under the real one unless told where they are.
export RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup} CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export CANARY_OPERATOR=bench NO_COLOR=1 HOME=$work/home
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@canary.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@canary.invalid
export GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"
say() { printf '\033[1m%s\033[0m\n' "$*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

# --- real releases, walked by canary ------------------------------------------------------------

# make_repo DIR SERVICE [GAP_YAML]: a git work tree holding the seed example (or GAP_YAML).
make_repo() {
  local dir=$1 service=$2 gap=${3:-$root/examples/seed-repo/gap/gap.yaml}
  mkdir -p "$dir"
  cp -r "$root/examples/seed-repo/gap" "$dir/"
  sed "s/^name: my-service\$/name: $service/" "$gap" >"$dir/gap/gap.yaml"
  git -C "$dir" init --quiet --initial-branch=main
  git -C "$dir" add --all
  git -C "$dir" commit --quiet -m "The seed's example service"
}

# start JOURNAL SERVICE REPO
start() {
  "$canary" --journal "$1" start "$2" --repo "$3" --namespace relational-data --yes \
    --v1-image "registry.example/gap-images/$2@sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f" \
    --host "staging=$2-staging.example.com" --host "production=$2.example.net" --no-remote \
    >/dev/null 2>&1
}

# walk JOURNAL SERVICE REPO TARGET STOP: walk a release with canary (`next --yes --commit`),
# testing v2 on staging at 10% and 50% once v2 is deployed everywhere. STOP=done walks to the
# end; STOP=ramp-25 stops once 25% of production was observed, then tests more staging weights
# until the release has TARGET events. Fails unless it has exactly TARGET events.
walk() {
  local db=$1 service=$2 repo=$3 target=$4 stop=$5
  # Without how a confirmation was answered (always --yes here), so that the cases below read
  # what was confirmed.
  local q="SELECT e.kind || ' ' || json_remove(e.detail, '$.answered') FROM events e
           JOIN releases r ON r.id = e.release_id
           WHERE r.service = '$service' ORDER BY e.id DESC LIMIT 1"
  local count="SELECT count(*) FROM events e JOIN releases r ON r.id = e.release_id
               WHERE r.service = '$service' AND r.id = (SELECT max(id) FROM releases WHERE service = '$service')"
  local last tested=false steps=0
  start "$db" "$service" "$repo"
  while :; do
    last=$(sqlite3 "$db" "$q")
    case "$last" in
      'deploy-confirmed {"env":"production","what":"v2 code"}')
        if ! $tested; then
          tested=true
          for w in 10 50; do
            "$canary" --journal "$db" weight "$service" staging $w --yes >/dev/null 2>&1
            "$canary" --journal "$db" next "$service" --yes --commit >/dev/null 2>&1
          done
          continue
        fi ;;
      'step-done {"step":"observed","weight":25}')
        [ "$stop" = ramp-25 ] && break ;;
      finished*)
        break ;;
    esac
    "$canary" --journal "$db" next "$service" --yes --commit >/dev/null 2>&1 ||
      die "canary next $service failed after: $last"
    steps=$((steps + 1))
    [ $steps -lt 200 ] || die "the walk of $service does not end"
  done
  if [ "$stop" = ramp-25 ]; then
    local w=20
    while [ $(($(sqlite3 "$db" "$count") + 6)) -le "$target" ]; do
      "$canary" --journal "$db" weight "$service" staging $w --yes >/dev/null 2>&1
      "$canary" --journal "$db" next "$service" --yes --commit >/dev/null 2>&1
      w=$((w + 10))
    done
    # Setting the weight it already has: two events, nothing written, no deploy owed.
    while [ "$(sqlite3 "$db" "$count")" -lt "$target" ]; do
      "$canary" --journal "$db" weight "$service" staging $((w - 10)) --yes >/dev/null 2>&1
    done
  fi
  local n
  n=$(sqlite3 "$db" "$count")
  [ "$n" -eq "$target" ] || die "the walk of $service has $n events, not $target: update the recipe"
}

say "walking the template releases with $canary"
make_repo "$work/repos/finished" bench-template
# The in-flight template's repository path names the service, so that each generated release
# in flight points at a repository of its own (made below), as real releases do.
make_repo "$work/repos/in-flight/bench-template" bench-template
tmpl=$work/template.db
walk "$tmpl" bench-template "$work/repos/finished" $finished_events done
walk "$tmpl" bench-template "$work/repos/in-flight/bench-template" $in_flight_events ramp-25

# --- the big journal, copied from the template by SQL -------------------------------------------

releases=$((services * generations))
events=$((services * ((generations - 1) * finished_events + in_flight_events)))
say "generating $releases releases and $events events"
big=$work/journal.db
# The schema, user_version and journal mode are canary's own: a copy of the template, emptied.
cp "$tmpl" "$big"
[ ! -e "$tmpl-wal" ] || die "the template journal was not checkpointed"
sqlite3 "$big" <<SQL
DELETE FROM written_files; DELETE FROM events; DELETE FROM releases;
ATTACH '$tmpl' AS t;
PRAGMA synchronous = OFF;
BEGIN;
-- One row per generated release: generation g (0 oldest; the last one in flight), service n.
CREATE TEMP TABLE gen AS
  WITH RECURSIVE
    s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n + 1 < $services),
    g(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM g WHERE g + 1 < $generations)
  SELECT g, n,
         CASE WHEN g < $generations - 1 THEN 1 ELSE 2 END AS tmpl,
         g * $services + n + 1 AS rid,
         printf('svc-%04d', n) AS svc,
         g * $services * $finished_events AS base,
         '-' || (($generations - 1 - g) * 7) || ' days' AS ago,
         '+' || n || ' seconds' AS later
  FROM g, s;
-- The template events with their rank k in their release.
CREATE TEMP TABLE tev AS
  SELECT release_id AS tmpl,
         id - (SELECT min(id) FROM t.events f WHERE f.release_id = e.release_id) AS k,
         id AS tid, at, operator, kind, phase, detail
  FROM t.events e;
INSERT INTO releases (id, service, config, position, phase, step_in_progress,
                      opened_at, updated_at, finished_at, v2_weights, shape)
  SELECT rid, svc, replace(r.config, 'bench-template', svc), r.position, r.phase,
         replace(r.step_in_progress, 'bench-template', svc),
         strftime('%Y-%m-%dT%H:%M:%fZ', r.opened_at, ago, later),
         strftime('%Y-%m-%dT%H:%M:%fZ', r.updated_at, ago, later),
         strftime('%Y-%m-%dT%H:%M:%fZ', r.finished_at, ago, later), r.v2_weights, r.shape
  FROM gen JOIN t.releases r ON r.id = gen.tmpl
  ORDER BY rid;
-- A generation's releases run side by side: event k of every release, then event k + 1.
INSERT INTO events (id, release_id, at, operator, kind, phase, detail)
  SELECT base + k * $services + n + 1, rid,
         strftime('%Y-%m-%dT%H:%M:%fZ', at, ago, later), operator, kind, phase,
         replace(detail, 'bench-template', svc)
  FROM gen JOIN tev ON tev.tmpl = gen.tmpl
  ORDER BY 1;
INSERT INTO written_files (release_id, path, sha256, event_id, commit_id)
  SELECT rid, w.path, w.sha256, base + tev.k * $services + n + 1, w.commit_id
  FROM gen JOIN t.written_files w ON w.release_id = gen.tmpl
           JOIN tev ON tev.tid = w.event_id;
COMMIT;
SQL
read -r got_releases got_events < <(sqlite3 -separator ' ' "$big" \
  "SELECT (SELECT count(*) FROM releases), (SELECT count(*) FROM events)")
[ "$got_releases" -eq "$releases" ] && [ "$got_events" -eq "$events" ] ||
  die "generated $got_releases releases and $got_events events"
ts="'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'"
bad=$(sqlite3 "$big" "SELECT (SELECT count(*) FROM events WHERE at NOT GLOB $ts)
  + (SELECT count(*) FROM releases WHERE opened_at NOT GLOB $ts OR updated_at NOT GLOB $ts
     OR coalesce(finished_at, '2000-01-01T00:00:00.000Z') NOT GLOB $ts)")
[ "$bad" -eq 0 ] || die "$bad generated timestamps are not in canary's format"
sqlite3 "$big" "PRAGMA integrity_check; PRAGMA foreign_key_check;" | grep -qx ok ||
  die "the generated journal fails SQLite's integrity or foreign key check"

# --- the generated rows are what canary writes ------------------------------------------------

say "walking svc-0001 with canary to compare with the generated svc-0001"
# Each release in flight reads its own repository's files, which name its own service: a copy
# of the in-flight template's files with the name replaced (no git: reading needs none).
say "a repository per release in flight"
(cd "$work/repos/in-flight/bench-template" && find gap -type f) >"$work/in-flight.files"
for ((n = 0; n < services; n++)); do
  svc=$(printf 'svc-%04d' "$n")
  while read -r f; do
    mkdir -p "$work/repos/in-flight/$svc/$(dirname "$f")"
    sed "s/bench-template/$svc/g" "$work/repos/in-flight/bench-template/$f" \
      >"$work/repos/in-flight/$svc/$f"
  done <"$work/in-flight.files"
done

make_repo "$work/repos/check" svc-0001
check=$work/check.db
walk "$check" svc-0001 "$work/repos/check" $finished_events done
# dump DB RELEASE_ID REPO: a release's rows, ids, times, hashes, commits, the release id in its
# configuration and the repo path masked.
dump() {
  local mask='s/[0-9a-f]{64}/SHA/g; s/"commit":"[0-9a-f]+"/"commit":"C"/g; s/\b[0-9a-f]{40}\b/C/g; s/"id":"[0-9a-f]{16}"/"id":"ID"/g'
  sqlite3 "$1" <<SQL | sed -E "$mask" | sed "s#$3#REPO#g"
SELECT service, config, position, phase, coalesce(step_in_progress, 'NULL'),
       finished_at IS NULL, v2_weights, shape FROM releases WHERE id = $2;
SELECT operator, kind, phase, detail FROM events WHERE release_id = $2 ORDER BY id;
SELECT path, coalesce(sha256, 'NULL'), coalesce(commit_id, 'NULL'),
       (SELECT count(*) FROM events e WHERE e.release_id = w.release_id AND e.id <= w.event_id)
FROM written_files w WHERE release_id = $2 ORDER BY path;
SQL
}
dump "$check" 1 "$work/repos/check" >"$work/check.rows"
dump "$big" 2 "$work/repos/finished" >"$work/generated.rows"
diff -u "$work/check.rows" "$work/generated.rows" >&2 ||
  die "the generated svc-0001 differs from the one canary wrote (above)"
echo "ok: the generated svc-0001 is row for row what canary wrote ($(wc -l <"$work/check.rows") rows)" >&2

# --- repositories for `next --dry-run`: the seed example and a 5,000-line gap.yaml -------------

# A gap.yaml of exactly 5,000 lines: the seed's web deployment among 499 workers.
big_gap_yaml() {
  local i
  printf '# gap/gap.yaml\nname: my-service\ndeployments:\n'
  for ((i = 0; i < 499; i++)); do
    if [ $i -eq 250 ]; then
      printf '  web:\n    ingress:\n      enabled: true\n    command:\n      - /opt/docker/bin/start\n'
    fi
    printf '  worker-%04d:\n    # consumes queue q-%04d\n    command:\n      - /opt/docker/bin/worker\n      - --queue=q-%04d\n    env:\n      CONCURRENCY: "4"\n      QUEUE: q-%04d\n    resources:\n      cpu: 100m\n' $i $i $i $i
  done
  printf '# 499 workers and web\n# end\n'
}
# A gap.yaml of exactly 5,000 lines laid out as real ones are (tests/fixtures/corpus): 195
# deployments, each under a comment, with an image, a `command` list, an `env` list of name/value
# items, resources and podLabels, some with replicas or one more variable; the seed's web among
# them.
real_gap_yaml() {
  local i q
  printf '# gap/gap.yaml: the deploy config of my-service\nname: my-service\n\ndeployments:\n'
  for ((i = 0; i < 192; i++)); do
    if [ $i -eq 96 ]; then
      printf '  # the web frontend, behind the ingress\n  web:\n    ingress:\n      enabled: true\n'
      printf '    command:\n      - /opt/docker/bin/start\n\n'
    fi
    printf -v q 'q-%04d' $i
    printf '  # worker-%04d: consumes %s for team-%d\n  worker-%04d:\n' $i $q $((i % 7)) $i
    printf '    image: registry.example/gap-images/worker:1.%d.%d\n' $((i % 5)) $((i % 11))
    [ $((i % 4)) -ne 0 ] || printf '    replicas: %d\n' $((i % 3 + 2))
    printf '    command:\n      - /opt/docker/bin/worker\n      - --queue=%s\n' $q
    printf '      - "--concurrency=%d"\n' $((i % 8 + 1))
    printf '    env:\n      - name: QUEUE\n        value: %s\n' $q
    printf '      - name: CONCURRENCY\n        value: "%d"\n' $((i % 8 + 1))
    printf '      - name: LOG_LEVEL\n        value: info\n'
    [ $((i % 3)) -ne 0 ] ||
      printf '      - name: DATABASE_URL\n        value: postgres://db-%d.internal:5432/gap?sslmode=require\n' $((i % 4))
    printf '    resources:\n      limits:\n        memory: %dMi\n        cpu: "1"\n' $((256 << (i % 3)))
    printf '      requests:\n        memory: 128Mi\n        cpu: 100m\n'
    printf '    podLabels:\n      team: team-%d\n      tier: worker\n\n' $((i % 7))
  done
  for i in 1 2; do
    printf '  # nightly job %d\n  nightly-%d-cron:\n    schedule: "0 %d * * *"\n' $i $i $i
    printf '    command:\n      - /opt/docker/bin/nightly-%d\n\n' $i
  done
  printf '# 192 workers, 2 cron jobs and web\n'
}
big_gap_yaml >"$work/gap-5000.yaml"
real_gap_yaml >"$work/gap-real.yaml"
for f in gap-5000 gap-real; do
  [ "$(wc -l <"$work/$f.yaml")" -eq 5000 ] || die "$f.yaml is not 5,000 lines"
done
make_repo "$work/repos/seed" seed-example
make_repo "$work/repos/gap-5000" gap-5000 "$work/gap-5000.yaml"
make_repo "$work/repos/gap-real" gap-real "$work/gap-real.yaml"
# Both releases sit in a copy of the big journal, so that its size shows if it matters.
nextdb=$work/next.db
cp "$big" "$nextdb"
start "$nextdb" seed-example "$work/repos/seed"
start "$nextdb" gap-5000 "$work/repos/gap-5000"
start "$nextdb" gap-real "$work/repos/gap-real"
# The seed example at a deploy (deploy-v1's to staging, its edit written and committed) and at an
# observation (ramp, 1% in production), taken there by canary: what `next --dry-run` asks git
# at each kind of step.
make_repo "$work/repos/seed-deploy" seed-deploy
make_repo "$work/repos/seed-observe" seed-observe
start "$nextdb" seed-deploy "$work/repos/seed-deploy"
start "$nextdb" seed-observe "$work/repos/seed-observe"
"$canary" --journal "$nextdb" next seed-deploy --yes --commit >/dev/null 2>&1 ||
  die "canary next seed-deploy failed"
for ((step = 0; step < 20; step++)); do
  "$canary" --journal "$nextdb" next seed-observe --yes --commit >/dev/null 2>&1 ||
    die "canary next seed-observe failed at step $step"
done

# The releases in flight above all stand at one position with one set of weights. In a copy of
# the journal they stand at every position of the plan (0 to 45) with weights spread over 0-100
# on both sides, nearly every row distinct, as in a busy journal: every step's words are listed.
varied=$work/varied.db
cp "$big" "$varied"
sqlite3 "$varied" "UPDATE releases
  SET position = json_object('index', id * 7 % 46, 'pending', json('[]')),
      v2_weights = json_array(id * 37 % 101, id * 53 % 101)
  WHERE finished_at IS NULL"

# --- the commands, and what the sqlite3 tool does in their place ------------------------------

svc=svc-$(printf '%04d' $((services / 2)))
# The queries canary runs: `list` reads the listing columns, the others whole releases.
cols="id, config, position, phase, step_in_progress, opened_at, updated_at, finished_at, v2_weights"
latest="SELECT $cols FROM releases WHERE service = '$svc' ORDER BY id DESC LIMIT 1;"
events_of="SELECT id, at, operator, kind, phase, detail FROM events
  WHERE release_id = (SELECT id FROM releases WHERE service = '$svc' ORDER BY id DESC LIMIT 1)"
in_flight="FROM releases WHERE finished_at IS NULL ORDER BY id;"
echo "SELECT service, shape, position, v2_weights $in_flight" >"$work/list.sql"
printf '.mode json\nSELECT %s %s\n' "$cols" "$in_flight" >"$work/list-json.sql"
echo "$latest $events_of ORDER BY id DESC LIMIT 1;" >"$work/status.sql"
echo "$latest $events_of ORDER BY id;" >"$work/log.sql"

c="$canary --journal $big"
n="$canary --journal $nextdb"
q="sqlite3 -readonly $big"
# name | canary command | baseline command | target ratio | what the target bounds (the read
# commands: issue 13's budgets, in time and instructions)
# `next --dry-run` is held to `git status` in time only (issue 23): git status executes about
# 0.8 M instructions, which the dynamic loader and argument parsing of any program canary's size
# come near before reading a file; in time, both are a process start and a few files read.
# The 5,000-line steps are held to the seed step by callgrind (issue 23), whose counts load does
# not move.
pairs=(
  "list|$c list|$q .read\\ $work/list.sql|1.5|both"
  "list (positions varied)|$canary --journal $varied list|sqlite3 -readonly $varied .read\\ $work/list.sql|1.5|both"
  "list --json|$c list --json|$q .read\\ $work/list-json.sql|1.5|both"
  "status|$c status $svc|$q .read\\ $work/status.sql|1.5|both"
  "log|$c log $svc|$q .read\\ $work/log.sql|1.5|both"
  "next --dry-run (seed)|$n next seed-example --dry-run|git -C $work/repos/seed status|2|time"
  "next --dry-run (seed, deploy)|$n next seed-deploy --dry-run|git -C $work/repos/seed-deploy status|2|time"
  "next --dry-run (seed, observe)|$n next seed-observe --dry-run|git -C $work/repos/seed-observe status|2|time"
  "next --dry-run (5,000 lines)|$n next gap-5000 --dry-run|$n next seed-example --dry-run|35|instructions"
  "next --dry-run (5,000 real)|$n next gap-real --dry-run|$n next seed-example --dry-run|35|instructions"
)

if $smoke; then
  say "smoke: each command once"
  expect_lines() { # N COMMAND...: COMMAND succeeds and prints N lines
    local want=$1 got
    shift
    got=$("$@" | wc -l) || die "failed: $*"
    [ "$got" -eq "$want" ] || die "$* printed $got lines, not $want"
  }
  expect_lines $((services + 1)) $c list
  expect_lines $((releases + 1)) $c list --all
  expect_lines $((services + 1)) $canary --journal "$varied" list
  [ "$($c list --json | grep -c '^    "service": ')" -eq "$services" ] || die "list --json"
  expect_lines 21 $c status "$svc"
  expect_lines $in_flight_events $c log "$svc"
  [ "$($c log "$svc" --json | grep -c '^    "kind": ')" -eq $in_flight_events ] || die "log --json"
  # Each step shows deploy-v1's diff: web-v1 added to gap.yaml.
  # The output is read whole first: `grep -q` stops at the match, and canary, still writing,
  # would then fail on the closed pipe (pipefail).
  for release in seed-example gap-5000 gap-real; do
    out=$($n next $release --dry-run 2>&1) || die "next $release --dry-run failed"
    grep -qx '+  web-v1:' <<<"$out" || die "next $release --dry-run shows no web-v1"
  done
  out=$($n next seed-deploy --dry-run 2>&1) || die "next seed-deploy --dry-run failed"
  grep -q 'Would deploy-v1: deploy to staging' <<<"$out" || die "seed-deploy is not at a deploy"
  out=$($n next seed-observe --dry-run 2>&1) || die "next seed-observe --dry-run failed"
  grep -q 'Would ramp: observe v2 at 1% in production' <<<"$out" ||
    die "seed-observe is not at an observation"
  for pair in "${pairs[@]}"; do
    IFS='|' read -r _ _ base _ <<<"$pair"
    eval "$base" >/dev/null || die "failed: $base"
  done
  # The watch latency of checked deploys, one release, in the debug build the tests use.
  (cd "$root" && cargo bench --locked --quiet --bench watch_latency --profile dev -- 1) ||
    die "the watch latency benchmark failed"
  say "smoke: ok"
  exit 0
fi

rounds=${BENCH_ROUNDS:-5}
runs=${BENCH_RUNS:-20}
warmup=${BENCH_WARMUP:-3}
# A shared machine's load drifts within a minute; a pair timed in one short hyperfine run sees
# the same load on both sides. Each pair is timed in each of several rounds, and a pair's ratio
# is the median of its rounds' ratios of medians.
say "timing (hyperfine: $rounds rounds of each pair, $warmup warm-ups and $runs runs per command)"
for ((round = 1; round <= rounds; round++)); do
  i=0
  for pair in "${pairs[@]}"; do
    IFS='|' read -r name cmd base _ <<<"$pair"
    hyperfine -N --style none --warmup "$warmup" --runs "$runs" \
      --export-json "$work/times-$i-$round.json" "$cmd" "$base" >/dev/null
    i=$((i + 1))
  done
  printf '.' >&2
done
echo >&2

# median N...: the median of the numbers given
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# pair_times I: the medians (canary, baseline) and the ratio of round r, one round per line
pair_times() {
  local r
  for ((r = 1; r <= rounds; r++)); do
    jq -r '[.results[0].median, .results[1].median] | "\(.[0]) \(.[1]) \(.[0] / .[1])"' \
      "$work/times-$1-$r.json"
  done
}
# peak RSS in KiB: the largest of three runs
rss() {
  local i m max=0
  for i in 1 2 3; do
    /usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null 2>&1
    m=$(tail -1 "$work/rss")
    [ "$m" -gt "$max" ] && max=$m
  done
  echo "$max"
}
# instructions COMMAND...: the instructions the command and any process it starts execute, as
# callgrind counts them: unlike times, the same from run to run and from load to load.
instructions() {
  rm -rf "$work/callgrind"
  mkdir "$work/callgrind"
  valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=/dev/null \
    --log-file="$work/callgrind/%p" "$@" >/dev/null 2>&1 || die "failed under callgrind: $*"
  cat "$work/callgrind"/* | sed -n 's/.*Collected : \([0-9]*\)$/\1/p' |
    awk '{ n += $1 } END { if (NR == 0) exit 1; print n }' || die "no callgrind count for $*"
}
printf '\n%-30s %9s %9s %6s %9s %9s %6s %6s  %s\n' "pair" "canary" "baseline" "ratio" \
  "canary" "baseline" "ratio" "target" "peak RSS of canary"
printf '%-30s %26s %26s\n' "" "(time, median of rounds)" "(instructions, callgrind)"
i=0
for pair in "${pairs[@]}"; do
  IFS='|' read -r name cmd base target bounds <<<"$pair"
  pair_times $i >"$work/pair-$i"
  a=$(median $(cut -d' ' -f1 "$work/pair-$i"))
  b=$(median $(cut -d' ' -f2 "$work/pair-$i"))
  r=$(median $(cut -d' ' -f3 "$work/pair-$i"))
  low=$(cut -d' ' -f3 "$work/pair-$i" | sort -g | head -1)
  high=$(cut -d' ' -f3 "$work/pair-$i" | sort -g | tail -1)
  # eval: the commands are written for hyperfine, with `\ ` inside an argument.
  ia=$(eval "instructions $cmd")
  ib=$(eval "instructions $base")
  kib=$(rss $cmd)
  awk -v n="$name" -v a="$a" -v b="$b" -v r="$r" -v lo="$low" -v hi="$high" -v t="$target" \
    -v ia="$ia" -v ib="$ib" -v k="$kib" -v bounds="$bounds" 'BEGIN {
    ir = ia / ib
    printf "%-30s %7.1fms %7.1fms %5.2fx %8.2fM %8.2fM %5.2fx %5.1fx  %5.1f MiB  (rounds %.2f-%.2fx)%s%s%s\n",
      n, a * 1000, b * 1000, r, ia / 1e6, ib / 1e6, ir, t, k / 1024, lo, hi,
      (r <= t || bounds == "instructions" ? "" : "  MISSED (time)"),
      (ir <= t || bounds == "time" ? "" : "  MISSED (instructions)"),
      (k <= 20 * 1024 ? "" : "  RSS MISSED")
  }'
  i=$((i + 1))
done
for cmd in "$c list --all" "$c list --all --json"; do
  awk -v n="${cmd#"$c "}" -v k="$(rss $cmd)" 'BEGIN {
    printf "%-30s %79s  %5.1f MiB%s\n", n, "(memory only)", k / 1024, (k <= 20 * 1024 ? "" : "  RSS MISSED")
  }'
done
# src/yaml/'s size, budget 1,800 lines: each file's lines before its first #[cfg(test)].
yaml_lines=$(find "$root/src/yaml" -name '*.rs' -exec awk '/^ *#\[cfg\(test\)\]/ { exit } { n++ } END { print n + 0 }' {} \; |
  awk '{ n += $1 } END { print n + 0 }')
echo
echo "src/yaml/: $yaml_lines lines before #[cfg(test)] (budget 1,800)$([ "$yaml_lines" -le 1800 ] || echo "  MISSED")"
echo "journal: $releases releases, $events events, $(du -m "$big" | cut -f1) MB; status and log of $svc"
(cd "$root" && cargo bench --locked --quiet --bench watch_latency -- 3) ||
  die "the watch latency benchmark failed"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
