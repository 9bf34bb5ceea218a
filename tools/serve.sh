#!/usr/bin/env bash
# serve.sh runs the Makefile's serving targets (demo, example, rollout-demo)
# so that the first run tells the truth as it happens:
#
#   1. it refuses at once when a port it needs is taken, naming the port;
#   2. it builds first, saying that the first build takes minutes and
#      counting the packages compiled;
#   3. it starts each command in turn, waiting until the previous one's port
#      answers, and prints where to look once the dashboard answers;
#   4. Ctrl-C (or any command ending) stops every process it started, by id.
#
# usage: tools/serve.sh NAME "PORTS" "PACKAGES" "PORT:COMMAND" ["PORT:COMMAND"...]
#   NAME      what is being served, for messages
#   PORTS     every TCP port on 127.0.0.1 the commands will listen on
#   PACKAGES  Go packages to build into bin/ before starting
#   PORT:CMD  a command to start, and the port that answers once it is ready
#             (the first one's port is the dashboard's)
set -uo pipefail

name=$1 ports=$2 pkgs=$3
shift 3
GO=${GO:-go}

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for p in $ports; do
  if answers "$p"; then
    echo "$name: port $p on 127.0.0.1 is taken (another make demo, make example or make rollout-demo?)." >&2
    echo "$name: stop what listens there (ss -ltnp | grep :$p) or choose other ports (the PORT variables at the top of the Makefile, e.g. make ${MAKE_TARGET:-demo} DEMO_PORT=8085)" >&2
    exit 1
  fi
done

# Build first, with progress: `go build -v` names every package it compiles,
# and nothing when the build cache is warm.
total=$($GO list -deps $pkgs 2>/dev/null | wc -l)
echo "$name: building $pkgs (the first build compiles about $total packages and takes a few minutes on 2 cores; later ones take seconds)"
start=$SECONDS
n=0 status=
mkdir -p bin
while IFS= read -r line; do
  case $line in
  exit:*) status=$line ;;
  *" "* | *:*) echo; echo "$line" ;; # a compiler message, not a package name
  *)
    n=$((n + 1))
    printf '\r%s: compiled %d of about %d packages (%ds) %-50.50s' "$name" "$n" "$total" $((SECONDS - start)) "$line"
    ;;
  esac
done < <($GO build -v -o bin/ $pkgs 2>&1; echo "exit:$?")
[ $n -gt 0 ] && echo
if [ "$status" != "exit:0" ]; then
  echo "$name: build failed" >&2
  exit 1
fi
echo "$name: built in $((SECONDS - start))s"

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
}
trap 'echo; echo "$name: stopping"; stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

dashboard=
for spec in "$@"; do
  port=${spec%%:*} cmd=${spec#*:}
  [ -z "$dashboard" ] && dashboard=$port
  echo "$name: starting $cmd"
  $cmd &
  pid=$!
  pids+=("$pid")
  start=$SECONDS
  until answers "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid"
      echo "$name: $cmd exited ($?) before port $port answered; its messages are above" >&2
      exit 1
    fi
    printf '\r%s: waiting for 127.0.0.1:%s to answer (%ds)' "$name" "$port" $((SECONDS - start))
    sleep 0.5
  done
  printf '\r%s: 127.0.0.1:%s answers (after %ds)          \n' "$name" "$port" $((SECONDS - start))
done
echo "$name: ready — open http://127.0.0.1:$dashboard (Ctrl-C stops everything)"
wait -n "${pids[@]}"
