"""A real Redis Sentinel set-up on loopback for herald's Sentinel tests: a
master, a replica (replicaof) and three `redis-sentinel` processes (Debian's
redis-sentinel) watching the master as "mymaster" with quorum 2, each with
its own writable config file in a temporary directory. Every wait is
bounded; every process is killed at exit (herald_testlib's cleanup)."""
import os
import shutil
import subprocess
import tempfile
import time

import redis

from herald_testlib import RedisServer, _procs, free_port

MASTER_NAME = "mymaster"


def _wait(cond, timeout, what, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except redis.exceptions.RedisError:  # connection, timeout, error answer
            pass
        time.sleep(step)
    raise AssertionError("timed out waiting for %s" % what)


class SentinelCluster:
    """master + replica + 3 sentinels. `password`: requirepass on both Redis
    servers (the sentinels themselves stay open, as channels_redis' default)."""

    def __init__(self, password=None, down_after_ms=1000, failover_timeout_ms=2000):
        self.dir = tempfile.mkdtemp(prefix="herald-sentinel-")
        self.password = password
        self.master = self._redis()
        self.replica = self._redis("--replicaof", "127.0.0.1", str(self.master.port))
        _wait(lambda: self.replica.r.info("replication")["master_link_status"] == "up",
              15, "the replica to sync")
        self.sentinel_ports = []
        self.sentinels = []
        for i in range(3):
            port = free_port()
            conf = os.path.join(self.dir, "sentinel-%d.conf" % i)
            lines = [
                "port %d" % port,
                "bind 127.0.0.1",
                "dir %s" % self.dir,
                "logfile %s" % os.path.join(self.dir, "sentinel-%d.log" % i),
                "sentinel monitor %s 127.0.0.1 %d 2" % (MASTER_NAME, self.master.port),
                "sentinel down-after-milliseconds %s %d" % (MASTER_NAME, down_after_ms),
                "sentinel failover-timeout %s %d" % (MASTER_NAME, failover_timeout_ms),
                "sentinel parallel-syncs %s 1" % MASTER_NAME,
            ]
            if password:
                lines.append("sentinel auth-pass %s %s" % (MASTER_NAME, password))
            with open(conf, "w") as f:
                f.write("\n".join(lines) + "\n")
            p = subprocess.Popen(["redis-sentinel", conf], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            _procs.append(p)
            self.sentinels.append(p)
            self.sentinel_ports.append(port)
        self.s = [redis.Redis(host="127.0.0.1", port=p, socket_timeout=5)
                  for p in self.sentinel_ports]
        # for polling during a failover: a slow answer is skipped, not
        # waited for (it would make the promotion look later than it was)
        self.s_poll = [redis.Redis(host="127.0.0.1", port=p, socket_timeout=0.5)
                       for p in self.sentinel_ports]
        # Ready when every sentinel knows the replica and the two others
        # (hello messages every 2 s): only then can they agree on a failover.
        def ready():
            for s in self.s:
                m = s.sentinel_master(MASTER_NAME)
                if int(m["num-slaves"]) < 1 or int(m["num-other-sentinels"]) < 2:
                    return False
            return True
        _wait(ready, 30, "the sentinels to know each other and the replica", step=0.2)

    def _redis(self, *extra):
        srv = RedisServer.__new__(RedisServer)
        srv._redis = redis
        srv.dir = None
        srv.port = free_port()
        srv.url = "redis://127.0.0.1:%d" % srv.port
        args = ["redis-server", "--port", str(srv.port), "--bind", "127.0.0.1",
                "--appendonly", "no", "--save", "", "--loglevel", "warning",
                "--dir", self.dir, "--dbfilename", "dump-%d.rdb" % srv.port]
        if self.password:
            args += ["--requirepass", self.password, "--masterauth", self.password]
        args += list(extra)
        srv.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _procs.append(srv.proc)
        srv.r = redis.Redis(host="127.0.0.1", port=srv.port, password=self.password,
                            socket_timeout=2)
        _wait(lambda: srv.r.ping(), 10, "redis-server on %d" % srv.port, step=0.02)
        return srv

    def url(self, password=True, db=None):
        auth = ":%s@" % self.password if (self.password and password) else ""
        hosts = ",".join("127.0.0.1:%d" % p for p in self.sentinel_ports)
        tail = "/%d" % db if db is not None else ""
        return "redis+sentinel://%s%s/%s%s" % (auth, hosts, MASTER_NAME, tail)

    def channels_host(self):
        """The same set-up as a channels_redis 4 host."""
        h = {"sentinels": [("127.0.0.1", p) for p in self.sentinel_ports],
             "master_name": MASTER_NAME}
        if self.password:
            h["password"] = self.password
        return h

    def layer(self, **kw):
        from channels_redis.core import RedisChannelLayer
        return RedisChannelLayer(hosts=[self.channels_host()], **kw)

    def master_addr(self):
        """What the sentinels say now: the set of (host, port) answers."""
        seen = set()
        for s in self.s_poll:
            try:
                a = s.sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis.exceptions.RedisError:
                continue
            if a:
                host = a[0].decode() if isinstance(a[0], bytes) else a[0]
                seen.add((host, int(a[1])))
        return seen

    def close(self):
        for p in self.sentinels:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        for srv in (self.replica, self.master):
            if srv.proc.poll() is None:
                srv.proc.kill()
                srv.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
