#!/bin/sh
# What each student's server starts with (c.Spawner.cmd, before jupyterhub-singleuser): join the student's cgroups
# that the hub's pre_spawn_hook made (so the server, its kernels and all they start share the student's limits),
# bring the student's copy of the workbook up to date (`bertqa course sync`), then become the server (exec), so the
# hub's signals and PID stay the server's. A step that fails is reported in the hub's log and the server starts anyway.
for procs in $BERTQA_COURSE_CGROUPS; do # cgroup.procs files, separated by spaces
  echo $$ 2>/dev/null > "$procs" || echo "start-student: cannot join $procs: the limits of $JUPYTERHUB_USER are not enforced" >&2
done
if [ -n "$CPU_LIMIT" ] && [ -z "$BERTQA_WASM_THREADS" ]; then
  # the wasm backend starts one thread per core of the machine: as many as the student's share instead
  BERTQA_WASM_THREADS=$(awk -v c="$CPU_LIMIT" 'BEGIN { n = int(c); print (n < 1 ? 1 : n) }')
  export BERTQA_WASM_THREADS
fi
"$BERTQA_NODE" "$(dirname "$0")/../cli/bertqa.js" course sync --course "$BERTQA_COURSE_DIR" --home "$HOME" >&2 ||
  echo "start-student: the workbook of $JUPYTERHUB_USER was not brought up to date (see the line above)" >&2
exec "$@"
