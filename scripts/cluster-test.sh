#!/usr/bin/env bash
# Runs Chisel's cluster samples on the engines they are for, on this machine:
#  1. a one-node SLURM (Debian's slurm-wlm and munge; slurmctld and slurmd started here, no
#     systemd) runs samples/cluster/slurm/batch.sbatch as a 4-task array over 12 images; one
#     task is requeued mid-item; every image must be edited exactly once, no temporary left, and
#     the dependent report job and `chisel report` must say all 12 are done;
#  2. the Kubernetes Indexed Job of samples/cluster/kubernetes/job.yaml is parsed and its
#     container command run once per completion index, with the environment such a pod gets;
#  3. a process in a cgroup with a 1-CPU quota runs its kernels on one thread.
# Needs root (daemons, cgroups) and scripts/install-deps.sh --cluster. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
chisel=${CHISEL:-$repo/.build/debug/chisel}

if [ "$(id -u)" -ne 0 ]; then
  echo "cluster-test: skipped: starting SLURM's daemons and cgroups needs root" >&2
  exit 0
fi
for tool in slurmctld slurmd sbatch squeue scontrol munged python3; do
  command -v "$tool" >/dev/null || { echo "cluster-test: $tool is missing: run scripts/install-deps.sh --cluster" >&2; exit 1; }
done
[ -x "$chisel" ] || { echo "cluster-test: no chisel at $chisel (swift build first)" >&2; exit 1; }

work=$(mktemp -d /tmp/chisel-cluster.XXXXXX)
started_munge=""
cgroup=""
fail() { echo "cluster-test: FAILED: $*" >&2; exit 1; }
cleanup() {
  set +e
  if [ -n "${SLURM_CONF:-}" ]; then
    scancel --quiet --user=root >/dev/null 2>&1
    scontrol shutdown >/dev/null 2>&1
    sleep 1
  fi
  for pidfile in "$work"/slurmctld.pid "$work"/slurmd.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  done
  [ -n "$started_munge" ] && kill "$started_munge" 2>/dev/null
  [ -n "$cgroup" ] && rmdir "$cgroup" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The inputs: the sample photos, twice under other names (12 images).
mkdir -p "$work/in"
n=0
for copy in a b; do
  for f in samples/batch/*; do
    cp "$f" "$work/in/$copy-$(basename "$f")"
    n=$((n + 1))
  done
done
# A cheap graph whose items each take a second or two, so a task can be stopped in the middle of one.
cat > "$work/graph.json" <<'EOF'
{"chisel": 1, "description": "cluster test: enlarge each image",
 "nodes": {
  "input": {"stage": "load_image", "params": {"path": "unused.png", "mode": "rgb"}},
  "big": {"stage": "resize", "inputs": {"image": "input.image"},
          "params": {"width": 1536, "height": 1536, "mode": "stretch", "filter": "lanczos"}},
  "save": {"stage": "save_image", "inputs": {"image": "big.image"}, "params": {"path": "{stem}.png"}}
 }}
EOF

check_outputs() {  # FOLDER: every input has exactly one output, and nothing half-written is left
  local out=$1 count
  count=$(find "$out" -maxdepth 1 -name '*.png' | wc -l)
  [ "$count" -eq "$n" ] || fail "$out holds $count outputs for $n images"
  for f in "$work"/in/*; do
    local stem
    stem=$(basename "${f%.*}")
    [ -f "$out/$stem.png" ] || fail "no output for $f in $out"
  done
  if find "$out" -name '*.chisel-tmp' | grep -q .; then fail "temporaries left in $out"; fi
}

# ---- 1. SLURM -------------------------------------------------------------------------------
echo "cluster-test: starting a one-node SLURM in $work" >&2
if ! munge -n >/dev/null 2>&1; then
  [ -f /etc/munge/munge.key ] || { mungekey --create >/dev/null 2>&1 || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; }
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  munged --force --pid-file="$work/munged.pid" 2>/dev/null || fail "munged did not start"
  started_munge=$(cat "$work/munged.pid" 2>/dev/null || true)
  sleep 1
  munge -n >/dev/null 2>&1 || fail "munge does not work"
fi
host=$(hostname -s)
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
mkdir -p "$work/state" "$work/spool"
cat > "$work/slurm.conf" <<EOF
ClusterName=chisel-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobRequeue=1
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$work/slurm.conf
slurmctld -f "$SLURM_CONF" || fail "slurmctld did not start ($(tail -3 "$work/slurmctld.log" 2>/dev/null))"
slurmd -f "$SLURM_CONF" || fail "slurmd did not start ($(tail -3 "$work/slurmd.log" 2>/dev/null))"
for _ in $(seq 60); do
  sinfo -h -o %T 2>/dev/null | grep -q idle && break
  sleep 1
done
sinfo -h -o %T | grep -q idle || fail "the node did not come up: $(sinfo 2>&1; tail -5 "$work/slurmd.log")"

mkdir -p "$work/out"
export CHISEL=$chisel
jid=$(sbatch --parsable --array=0-3 --cpus-per-task=1 --mem=1G --chdir="$work" \
  samples/cluster/slurm/batch.sbatch "$work/graph.json" "$work/in" "$work/out") || fail "sbatch refused the sample"
echo "cluster-test: array job $jid submitted" >&2

# Requeue task 1 once it has finished one image and is in the middle of its next.
requeued=""
for _ in $(seq 240); do
  state=$(squeue -h -j "${jid}_1" -o %T 2>/dev/null || true)
  report="$work/out/chisel-batch-1-of-4.jsonl"
  if [ "$state" = RUNNING ] && [ -s "$report" ] && [ "$(wc -l < "$report")" -ge 1 ]; then
    lines=$(wc -l < "$report")
    scontrol requeue "${jid}_1" && requeued=yes
    echo "cluster-test: task 1 requeued after $lines of its images" >&2
    break
  fi
  [ -z "$state" ] && [ -s "$report" ] && break  # it finished too fast to be stopped
  sleep 0.5
done
[ -n "$requeued" ] || fail "task 1 could not be caught running to requeue it"
# A requeued job waits a while before it may start again; let it start now.
for _ in $(seq 20); do
  squeue -h -j "${jid}_1" -o %r 2>/dev/null | grep -q BeginTime && break
  sleep 0.5
done
scontrol update JobId="${jid}_1" StartTime=now >/dev/null 2>&1 || true

for _ in $(seq 600); do
  [ -z "$(squeue -h 2>/dev/null)" ] && break
  sleep 1
done
[ -z "$(squeue -h)" ] || fail "jobs still queued after 10 minutes: $(squeue)"

check_outputs "$work/out"
grep -q "attempt 2" "$work/chisel-batch-${jid}_1.log" || fail "task 1 did not run a second time: $(cat "$work/chisel-batch-${jid}_1.log")"
report_log=$(find "$work/out" -name 'chisel-report-*.log' | head -1)
[ -n "$report_log" ] || fail "the dependent report job left no log"
grep -q "^$n items: .* 0 failed, 0 missing" "$report_log" || fail "the report job says: $(cat "$report_log")"
"$chisel" report "$work"/out/chisel-batch-*-of-4.jsonl --input "$work/in" > "$work/report.txt" \
  || fail "chisel report: $(cat "$work/report.txt")"
grep -q "^$n items: .* 0 failed, 0 missing" "$work/report.txt" || fail "chisel report: $(cat "$work/report.txt")"
echo "cluster-test: SLURM array: $n images edited once each, task 1 requeued and resumed; $(head -1 "$work/report.txt")" >&2

# ---- 2. Kubernetes Indexed Job, its pods' commands run here ----------------------------------
mkdir -p "$work/k8s/work" "$work/k8s/out"
cp "$work/graph.json" "$work/k8s/work/graph.json"
python3 - "$repo/samples/cluster/kubernetes/job.yaml" "$chisel" "$work" <<'PY' || fail "the Kubernetes Job's command did not run as an Indexed Job pod would"
import os, subprocess, sys, yaml
manifest, chisel, work = sys.argv[1], sys.argv[2], sys.argv[3]
job = yaml.safe_load(open(manifest))
assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1", "not a batch/v1 Job"
spec = job["spec"]
assert spec["completionMode"] == "Indexed", "completionMode must be Indexed"
completions = int(spec["completions"])
assert spec.get("backoffLimitPerIndex", 0) >= 1, "each index should be retried on its own"
pod = spec["template"]["spec"]
assert pod["restartPolicy"] == "Never"
container = pod["containers"][0]
limits = container["resources"]["limits"]
assert "cpu" in limits and "cpu" in container["resources"]["requests"], "CPU request and limit"
command = container["command"]
assert command[0] == "chisel"
assert command[command.index("--shard-count") + 1] == str(completions), "--shard-count must equal completions"
# The volumes, as folders here.
mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
local = {"graph": os.path.join(work, "k8s/work"), "inputs": os.path.join(work, "in"),
         "outputs": os.path.join(work, "k8s/out"), "models": os.path.join(work, "k8s/models")}
def here(arg):
    for path, name in sorted(mounts.items(), key=lambda m: -len(m[0])):
        if arg == path or arg.startswith(path + "/"):
            return local[name] + arg[len(path):]
    return arg
for index in range(completions):
    env = dict(os.environ)
    env.pop("SLURM_CONF", None)
    env.update({e["name"]: e.get("value", "") for e in container.get("env", [])})
    env["CHISEL_MODELS"] = local["models"]
    env["JOB_COMPLETION_INDEX"] = str(index)   # what the Job controller gives pod `index`
    subprocess.run([chisel] + [here(a) for a in command[1:]], env=env, check=True)
reports = [os.path.join(local["outputs"], f"chisel-batch-{i}-of-{completions}.jsonl") for i in range(completions)]
subprocess.run([chisel, "report", *reports, "--input", local["inputs"]], check=True)
PY
check_outputs "$work/k8s/out"
echo "cluster-test: Kubernetes Indexed Job: 4 pods' commands edited the $n images once each" >&2

# ---- 3. A 1-CPU cgroup quota is one kernel thread ----------------------------------------------
threads_json() { "$chisel" bench --json --part kernels --size 64 --repeats 1 --precision f32 2>/dev/null; }
if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
  cgroup=/sys/fs/cgroup/chisel-test-$$
  echo "+cpu" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
  mkdir "$cgroup" && echo "100000 100000" > "$cgroup/cpu.max"
elif [ -d /sys/fs/cgroup/cpu ]; then
  cgroup=/sys/fs/cgroup/cpu/chisel-test-$$
  mkdir "$cgroup" && echo 100000 > "$cgroup/cpu.cfs_period_us" && echo 100000 > "$cgroup/cpu.cfs_quota_us"
fi
if [ -n "$cgroup" ] && [ -d "$cgroup" ]; then
  out=$(sh -c "echo \$\$ > '$cgroup/cgroup.procs' && exec \"\$0\" bench --json --part kernels --size 64 --repeats 1 --precision f32" "$chisel" 2>/dev/null)
  echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["threads"] == 1 and d["openmp_threads"] == 1, d' \
    || fail "under a 1-CPU quota: $out"
  echo "cluster-test: under a 1-CPU cgroup quota the kernels run on 1 thread" >&2
else
  echo "cluster-test: no writable cgroup CPU controller here; the quota check is in CPUBudgetTests only" >&2
fi
echo "cluster-test: passed" >&2
