"""The course's hooks for JupyterHub's own spawners (LocalProcessSpawner, SimpleLocalProcessSpawner), imported by the
jupyterhub_config.py that `bertqa course setup` writes. They only call `bertqa course prepare` / `reap`, which do the
work (lib/course/limits.ts):

  pre_spawn_hook   the student's cgroups with the spawner's mem_limit and cpu_limit, and the roster entry; the server
                   joins the cgroups itself (lib/course/start-student.sh, named in c.Spawner.cmd)
  post_stop_hook   ends what a stopped server left behind (kernels of a server that was killed) and removes its cgroups
"""
import asyncio
import json
import os
import pwd


class Course:
    def __init__(self, course_dir, install, node):
        self.course_dir = course_dir
        self.bertqa = [node, os.path.join(install, "lib", "cli", "bertqa.js"), "course"]
        self.node = node

    def environment(self):
        """What every student's server gets: the kernel spec, the course, node; and the hub's own BERTQA_* settings."""
        env = {k: v for k, v in os.environ.items() if k.startswith("BERTQA_")}
        env.update({
            "JUPYTER_PATH": os.path.join(self.course_dir, "jupyter"),
            "BERTQA_COURSE_DIR": self.course_dir,
            "BERTQA_NODE": self.node,
        })
        return env

    async def _run(self, spawner, *args):
        proc = await asyncio.create_subprocess_exec(*self.bertqa, *args, "--course", self.course_dir,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError("bertqa course %s for %s failed: %s" % (args[0], spawner.user.name, err.decode().strip()))
        return json.loads(out.decode().strip().splitlines()[-1])

    @staticmethod
    def _home(spawner):
        home = getattr(spawner, "home_dir", None)  # SimpleLocalProcessSpawner: its home_dir_template
        return home if home else pwd.getpwnam(spawner.user.name).pw_dir

    async def pre_spawn_hook(self, spawner):
        args = ["prepare", "--student", spawner.user.name, "--home", self._home(spawner)]
        if spawner.mem_limit:
            args += ["--mem-limit", str(spawner.mem_limit)]
        if spawner.cpu_limit:
            args += ["--cpu-limit", str(spawner.cpu_limit)]
        if not hasattr(spawner, "home_dir"):  # a real user: their server joins its cgroups as that user
            pw = pwd.getpwnam(spawner.user.name)
            args += ["--owner", "%d:%d" % (pw.pw_uid, pw.pw_gid)]
        entry = await self._run(spawner, *args)
        for reason in entry["not_enforced"]:
            spawner.log.warning("%s: not enforced: %s", spawner.user.name, reason)
        procs = " ".join(os.path.join(d, "cgroup.procs") for d in entry["cgroups"].values())
        # a new dict: the configured one is shared by every student's spawner
        spawner.environment = dict(spawner.environment, BERTQA_COURSE_CGROUPS=procs)

    async def post_stop_hook(self, spawner):
        ended = await self._run(spawner, "reap", "--student", spawner.user.name)
        if ended["ended"]:
            spawner.log.info("%s: ended what the server left running: PIDs %s", spawner.user.name, ended["ended"])
