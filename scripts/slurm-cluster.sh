#!/usr/bin/env bash
# Runs a real one-node Slurm cluster on this machine, for the tests of reframe's Slurm backend
# (Debian/Ubuntu, apt; no systemd needed). The node is this machine with all its CPUs, in one
# default partition; no accounting (no sacct); finished jobs stay in squeue for 10 minutes.
#   scripts/slurm-cluster.sh start [DIR]    installs slurmctld, slurmd, slurm-client and munge
#                                           if missing, starts munged if it is not running, writes
#                                           DIR/slurm.conf (DIR: target/slurm by default), starts
#                                           slurmctld and slurmd with their state and logs in DIR,
#                                           waits (up to 90 s) until the node takes jobs, and
#                                           prints the path of slurm.conf, the only line on stdout:
#                                             export SLURM_CONF=$(scripts/slurm-cluster.sh start)
#                                           A cluster already running from DIR is left as it is;
#                                           jobs and their ids carry over a stop and a start.
#   scripts/slurm-cluster.sh stop [DIR]     cancels the jobs still queued or running, then stops
#                                           the slurmctld and slurmd started from DIR (munged
#                                           keeps running)
#   scripts/slurm-cluster.sh status [DIR]   prints sinfo and squeue
# The daemons listen on two free ports chosen at the first start and kept in DIR/slurm.conf (not
# Slurm's usual 6817/6818), so clusters started from other folders, or by other checkouts on a
# machine whose network is shared, never answer this one's commands.
# Their logs: DIR/slurmctld.log and DIR/slurmd.log; DIR/*.out hold what they print (the same
# lines, and the errors that stop them before their log opens).
set -euo pipefail

usage() {
  echo "usage: $0 start|stop|status [DIR]" >&2
  exit 2
}

(($# >= 1 && $# <= 2)) || usage
command=$1
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(realpath -m "${2:-$root/target/slurm}")
conf=$dir/slurm.conf
export SLURM_CONF=$conf

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  sudo="sudo"
fi

log() {
  echo "slurm-cluster: $*" >&2
}

install_packages() {
  local packages=(slurmctld slurmd slurm-client munge) missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  if ! command -v apt-get >/dev/null; then
    log "needs these packages, and this system has no apt-get: ${missing[*]}"
    exit 1
  fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# munged as Debian's service would run it: user munge, key in /etc/munge, socket in /run/munge.
start_munge() {
  if munge -n </dev/null >/dev/null 2>&1; then
    return 0
  fi
  if ! $sudo test -e /etc/munge/munge.key; then
    $sudo mungekey --create >&2
    $sudo chown munge:munge /etc/munge/munge.key
  fi
  $sudo install -d -o munge -g munge -m 0755 /run/munge
  log "starting munged"
  $sudo runuser -u munge -- /usr/sbin/munged >&2
  local i
  for i in $(seq 50); do
    munge -n </dev/null >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "munged did not come up"
  exit 1
}

# The pid of DIR's daemon NAME (slurmctld or slurmd) when it is running, else nothing.
daemon_pid() {
  local pid
  pid=$(cat "$dir/$1.pid" 2>/dev/null) || return 0
  if [[ -n "$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$1" ]]; then
    echo "$pid"
  fi
}

stop_daemon() {
  local pid i
  pid=$(daemon_pid "$1")
  if [[ -n "$pid" ]]; then
    log "stopping $1 ($pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do
      [[ -d /proc/$pid ]] || break
      sleep 0.1
    done
    if [[ -d /proc/$pid ]]; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/$1.pid"
}

node_state() {
  timeout 10 sinfo -h -o %t 2>/dev/null | head -n 1 || true
}

# The node answers and takes jobs: idle, or running some (jobs that outlived a stop and restart).
node_up() {
  case "$(node_state)" in
    idle | mix | alloc | comp) return 0 ;;
    *) return 1 ;;
  esac
}

# Cancels this user's jobs that are still pending or running, and waits (up to 15 s) for them
# to end, so that none outlives the daemons.
cancel_jobs() {
  local i states=pending,running,suspended,configuring,completing
  [[ -n "$(daemon_pid slurmctld)" ]] || return 0
  [[ -n "$(squeue -h -u "$(id -un)" -t "$states" -o %i 2>/dev/null)" ]] || return 0
  log "cancelling the jobs still queued"
  scancel -u "$(id -un)" 2>/dev/null || true
  for i in $(seq 150); do
    [[ -z "$(squeue -h -u "$(id -un)" -t "$states" -o %i 2>/dev/null)" ]] && return 0
    sleep 0.1
  done
  log "some jobs had not ended after 15 s"
}

# Whether a TCP socket of this machine listens on port $1 (IPv4 or IPv6).
port_listening() {
  local hex
  hex=$(printf '%04X' "$1")
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p=":$hex" \
    '$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }'
}

# Two consecutive free ports in 20000..59999 (slurmctld's, slurmd's), as "CTLD SLURMD"; those
# of DIR's slurm.conf when it has them and they are free, so a restarted cluster keeps them.
choose_ports() {
  local ctld slurmd i
  ctld=$(sed -n 's/^SlurmctldPort=//p' "$conf" 2>/dev/null)
  slurmd=$(sed -n 's/^SlurmdPort=//p' "$conf" 2>/dev/null)
  if [[ -n "$ctld" && -n "$slurmd" ]] && ! port_listening "$ctld" && ! port_listening "$slurmd"; then
    echo "$ctld $slurmd"
    return 0
  fi
  for i in $(seq 50); do
    ctld=$((20000 + 2 * (RANDOM % 20000)))
    slurmd=$((ctld + 1))
    if ! port_listening "$ctld" && ! port_listening "$slurmd"; then
      echo "$ctld $slurmd"
      return 0
    fi
  done
  log "found no two free ports in 20000..59999"
  exit 1
}

write_conf() {
  local host user cpus ports
  host=$(hostname -s)
  user=$(id -un)
  cpus=$(nproc)
  ports=$(choose_ports)
  # The addresses are given, so the host name needs no entry in /etc/hosts.
  cat >"$conf" <<EOF
# Written by scripts/slurm-cluster.sh: a one-node cluster on this machine, for tests.
ClusterName=reframe
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=${ports% *}
SlurmdPort=${ports#* }
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# batch_sched_delay=0: measured here, a job starts 0.5 s after sbatch (2.5 s without) and a job
# 1 s after the end of the jobs it depends on (2 s without); the rest is slurmctld's 1 s tick.
# (sched_min_interval and bf_interval changed nothing.)
SchedulerParameters=batch_sched_delay=0
MinJobAge=600
KillWait=5
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  install_packages
  start_munge
  if [[ -n "$(daemon_pid slurmctld)" && -n "$(daemon_pid slurmd)" ]] && node_up; then
    echo "$conf"
    return 0
  fi
  stop_daemon slurmd
  stop_daemon slurmctld
  mkdir -p "$dir/state" "$dir/spool"
  write_conf
  local t0=$EPOCHREALTIME
  # Each in its own session, so that it outlives this script and its terminal.
  setsid slurmctld -D -i -f "$conf" </dev/null >>"$dir/slurmctld.out" 2>&1 &
  echo $! >"$dir/slurmctld.pid"
  disown
  setsid slurmd -D -f "$conf" -N "$(hostname -s)" </dev/null >>"$dir/slurmd.out" 2>&1 &
  echo $! >"$dir/slurmd.pid"
  disown
  # 90 s: on a loaded machine a fresh slurmd has taken over 30 s to register.
  local up=""
  while awk "BEGIN { exit !($EPOCHREALTIME - $t0 < 90) }"; do
    [[ -n "$(daemon_pid slurmctld)" && -n "$(daemon_pid slurmd)" ]] || break
    node_up && up=1 && break
    sleep 0.1
  done
  if [[ -z "$up" ]]; then
    local state
    state=$(node_state)
    log "the node did not come up after $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $t0 }") s (state: ${state:-no answer}; ports: $(sed -n 's/^Slurm\(ctld\|d\)Port=//p' "$conf" | paste -sd ' '))"
    # The logs have the times; what the daemons print holds the errors from before the logs open.
    local d f
    for d in slurmctld slurmd; do
      f=$dir/$d.log
      [[ -s "$f" ]] || f=$dir/$d.out
      if [[ -s "$f" ]]; then
        echo "--- $f" >&2
        tail -n 25 "$f" >&2
      fi
    done
    timeout 10 scontrol show node >&2 2>&1 || true
    stop_daemon slurmd
    stop_daemon slurmctld
    exit 1
  fi
  log "up after $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $t0 }") s"
  echo "$conf"
}

case "$command" in
  start) start ;;
  stop)
    cancel_jobs
    stop_daemon slurmd
    stop_daemon slurmctld
    ;;
  status)
    sinfo
    squeue -r -t all
    ;;
  *) usage ;;
esac
