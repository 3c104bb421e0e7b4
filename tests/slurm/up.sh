#!/usr/bin/env bash
# Starts a one-node SLURM cluster (munged + slurmctld + slurmd) on 127.0.0.1 for tests.
#
#   tests/slurm/up.sh DIR     config, state, logs and PID files all under DIR
#   . DIR/env                 exports SLURM_CONF (sbatch, squeue, sacct read it)
#   tests/slurm/down.sh DIR   stops the three daemons by PID
#
# Needs Debian's slurm-wlm and munge packages and root (slurmd starts jobs as their user).
set -euo pipefail
dir=$(realpath -m "${1:?usage: up.sh DIR}")
mkdir -p "$dir"/{state,spool,munge}
for tool in munged mungekey slurmctld slurmd sinfo; do
  command -v "$tool" >/dev/null || { echo "up.sh: $tool not found (apt-get install slurm-wlm munge)" >&2; exit 1; }
done

# Free TCP ports, so that several test runs (or a real cluster) can share the machine.
read -r ctld_port slurmd_port < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
node=dnabert-ci-node

mungekey --create --keyfile "$dir/munge/munge.key" --force >/dev/null 2>&1 ||
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 600 "$dir/munge/munge.key"
munged --force --key-file "$dir/munge/munge.key" --socket "$dir/munge/munge.sock" \
  --pid-file "$dir/munge/munged.pid" --log-file "$dir/munge/munged.log" \
  --seed-file "$dir/munge/munged.seed"

cat > "$dir/slurm.conf" <<CONF
ClusterName=dnabertci
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
NodeName=$node NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
# Snakemake's SLURM jobstep plugin starts each rule with `srun` after dropping every SLURM_*
# variable but the job's identity, SLURM_CONF included. A real cluster keeps slurm.conf at
# /etc/slurm, where srun finds it without the variable; this one keeps it in DIR, so an srun
# first on PATH puts the variable back (from a name the plugin leaves alone) and runs the real one.
mkdir -p "$dir/bin"
cat > "$dir/bin/srun" <<SHIM
#!/bin/sh
export SLURM_CONF="\${DNABERT_TEST_SLURM_CONF:?}"
exec $(command -v srun) "\$@"
SHIM
chmod +x "$dir/bin/srun"
cat > "$dir/env" <<ENV
export SLURM_CONF=$dir/slurm.conf
export DNABERT_TEST_SLURM_CONF=$dir/slurm.conf
export PATH=$dir/bin:\$PATH
ENV
export SLURM_CONF=$dir/slurm.conf

slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N "$node"
for _ in $(seq 60); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null || true)
  if [[ $state == idle* ]]; then
    echo "up.sh: SLURM up in $dir (node $node: $cpus CPUs, $mem_mb MB; slurmctld port $ctld_port)"
    exit 0
  fi
  sleep 1
done
echo "up.sh: the node did not become idle (state: '${state:-none}'); logs:" >&2
tail -n 20 "$dir"/slurmctld.log "$dir"/slurmd.log >&2 || true
exit 1
