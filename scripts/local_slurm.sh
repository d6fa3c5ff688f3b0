#!/usr/bin/env bash
# A real one-node SLURM cluster (slurmctld + slurmd + slurmdbd accounting) on this machine, for trying
# `dora grid` through Dora's own submitit path on a workstation. Debian/Ubuntu, run as root.
#
#   scripts/local_slurm.sh start    install (first time) and start munge, MariaDB, slurmdbd, slurmctld, slurmd
#   scripts/local_slurm.sh status   sinfo + squeue
#   scripts/local_slurm.sh stop     stop the daemons started by `start` (by their recorded PIDs)
#
# State lives in $SLURM_LOCAL_DIR (default /tmp/audiocraft-slurm). Partition: `debug` (default), one node with this
# machine's CPUs. Accounting (slurmdbd) is on because submitit reads job states from `sacct`.
set -euo pipefail
STATE="${SLURM_LOCAL_DIR:-/tmp/audiocraft-slurm}"
HOST="$(hostname -s)"
DB_PORT="${SLURM_LOCAL_DB_PORT:-3307}"
log() { printf '[local-slurm] %s\n' "$*" >&2; }

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null \
     && command -v munged >/dev/null; then return 0; fi
  [ "$(id -u)" = 0 ] || { echo "local_slurm.sh: needs root to install packages" >&2; exit 1; }
  log "installing slurm, munge, mariadb (Debian packages)"
  local policy_created=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; policy_created=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client slurmdbd munge mariadb-server >/dev/null
  if [ "$policy_created" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}

wait_port() {  # host port seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "local_slurm.sh: nothing listens on $1:$2 after $3 s" >&2; return 1
}

write_configs() {
  mkdir -p "$STATE"/{spool,state,log,run,db} /etc/slurm
  local cpus mem
  cpus="$(nproc)"
  mem="$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')"
  mem=$(( mem * 95 / 100 ))
  cat > /etc/slurm/slurm.conf <<CONF
ClusterName=audiocraft-local
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
CONF
  cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=${DB_PORT}
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
CONF
  chmod 600 /etc/slurm/slurmdbd.conf
}

start_munge() {
  if [ ! -f /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1k count=1 2>/dev/null
  fi
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge; chown munge:munge /run/munge /var/log/munge /var/lib/munge
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    su -s /bin/sh munge -c "munged --pid-file=/run/munge/munged.pid" || runuser -u munge -- munged
    sleep 0.5
    cp /run/munge/munged.pid "$STATE/run/munged.pid" 2>/dev/null || true
  fi
  munge -n | unmunge >/dev/null
}

start_db() {
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$DB_PORT") 2>/dev/null; then
    if [ ! -d "$STATE/db/mysql" ]; then
      mariadb-install-db --user=root --datadir="$STATE/db" --auth-root-authentication-method=normal >/dev/null
    fi
    setsid mariadbd --user=root --datadir="$STATE/db" --port="$DB_PORT" --bind-address=127.0.0.1 \
      --socket="$STATE/run/mysqld.sock" --pid-file="$STATE/run/mariadb.pid" --skip-grant-tables=0 \
      >"$STATE/log/mariadb.log" 2>&1 < /dev/null &
    wait_port 127.0.0.1 "$DB_PORT" 30
  fi
  mariadb --socket="$STATE/run/mysqld.sock" -uroot -e \
    "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
     CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
     GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
     FLUSH PRIVILEGES;"
}

cmd_start() {
  install_packages
  mkdir -p "$STATE"
  write_configs
  start_munge
  start_db
  if ! (exec 3<>/dev/tcp/127.0.0.1/6819) 2>/dev/null; then
    setsid slurmdbd >"$STATE/log/slurmdbd.out" 2>&1 < /dev/null
    wait_port 127.0.0.1 6819 30
  fi
  sacctmgr -i add cluster audiocraft-local >/dev/null 2>&1 || true
  [ -f "$STATE/run/slurmctld.pid" ] && kill -0 "$(cat "$STATE/run/slurmctld.pid")" 2>/dev/null || setsid slurmctld
  wait_port 127.0.0.1 6817 30
  [ -f "$STATE/run/slurmd.pid" ] && kill -0 "$(cat "$STATE/run/slurmd.pid")" 2>/dev/null || setsid slurmd
  local i
  for ((i = 0; i < 100; i++)); do
    sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && break
    sleep 0.3
  done
  scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
  sinfo
  log "cluster up; state in $STATE; stop with: $0 stop"
}

cmd_stop() {
  local name pid
  for name in slurmd slurmctld slurmdbd mariadb munged; do
    if [ -f "$STATE/run/$name.pid" ]; then
      pid="$(cat "$STATE/run/$name.pid")"
      kill "$pid" 2>/dev/null && log "stopped $name ($pid)" || true
      rm -f "$STATE/run/$name.pid"
    fi
  done
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) sinfo; squeue ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
