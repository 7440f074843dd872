"""Python clients for the benchmark: the standard library's smtplib and aiosmtplib.

Usage: python3 bench/py_client.py '<json spec>'  -> prints "RESULT <json>" on stdout.
spec: { lib: 'smtplib'|'aiosmtplib', kind: 'small'|'large', mode: 'awaited'|'queued', n, warmup,
        host, port, ctrlPort, msgFile }
It times itself: wall clock and resource.getrusage(RUSAGE_SELF) CPU around the timed part only,
ru_maxrss for peak RSS (KB on Linux).
"""
import json
import resource
import socket
import sys
import time

FROM = "bench@bench.local"
TO = "sink@sink.local"


class Control:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.f = self.sock.makefile("rw", encoding="ascii", newline="\n")

    def cmd(self, line):
        self.f.write(line + "\n")
        self.f.flush()
        return self.f.readline().strip()

    def reset(self):
        self.cmd("RESET")

    def stats(self):
        return json.loads(self.cmd("STATS"))


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


def size_run(spec, out, done, t_start):
    # the warm-up's rate sizes the timed run so that a slow client keeps the cell near targetMs
    rate = done / max(0.001, (time.perf_counter() - t_start) * 1000)
    if spec.get("targetMs"):
        n = max(min(spec["n"], round(rate * spec["targetMs"])), min(spec["n"], spec["minN"]))
        spec["n"] = out["n"] = n


def run_smtplib(spec, msg, ctl, out):
    import smtplib

    s = smtplib.SMTP(spec["host"], spec["port"], local_hostname="bench.local")
    s.ehlo()
    if spec["kind"] == "small":
        tw, done = time.perf_counter(), 0
        while done < spec["warmup"] and (done == 0 or (time.perf_counter() - tw) * 1000 < spec["warmupMs"]):
            s.sendmail(FROM, [TO], msg)
            done += 1
        size_run(spec, out, done, tw)
    out["baseRssKB"] = rss_kb()
    ctl.reset()
    c0, t0 = cpu_s(), time.perf_counter()
    for _ in range(spec["n"]):
        refused = s.sendmail(FROM, [TO], msg)
        if refused:
            raise RuntimeError("refused %r" % (refused,))
    out["elapsedMs"] = (time.perf_counter() - t0) * 1000
    out["cpuMs"] = (cpu_s() - c0) * 1000
    out["stats"] = ctl.stats()
    s.quit()


def run_aiosmtplib(spec, msg, ctl, out):
    import asyncio
    import aiosmtplib

    async def go():
        s = aiosmtplib.SMTP(hostname=spec["host"], port=spec["port"], local_hostname="bench.local",
                            use_tls=False, start_tls=False, timeout=120)
        await s.connect()
        await s.ehlo()

        async def batch(n):
            if spec["mode"] == "queued":
                # all sends in flight at once on the one connection (aiosmtplib serialises them)
                await asyncio.gather(*(s.sendmail(FROM, [TO], msg) for _ in range(n)))
            else:
                for _ in range(n):
                    await s.sendmail(FROM, [TO], msg)

        if spec["kind"] == "small":
            tw, done, chunk = time.perf_counter(), 0, 5
            while done < spec["warmup"] and (done == 0 or (time.perf_counter() - tw) * 1000 < spec["warmupMs"]):
                k = min(chunk, spec["warmup"] - done)
                await batch(k)
                done += k
                chunk *= 2
            size_run(spec, out, done, tw)
        out["baseRssKB"] = rss_kb()
        ctl.reset()
        c0, t0 = cpu_s(), time.perf_counter()
        await batch(spec["n"])
        out["elapsedMs"] = (time.perf_counter() - t0) * 1000
        out["cpuMs"] = (cpu_s() - c0) * 1000
        out["stats"] = ctl.stats()
        await s.quit()

    asyncio.run(go())


def main():
    spec = json.loads(sys.argv[1])
    out = {"n": spec["n"]}
    try:
        with open(spec["msgFile"], "rb") as f:
            msg = f.read()
        ctl = Control(spec["host"], spec["ctrlPort"])
        if spec["lib"] == "smtplib":
            run_smtplib(spec, msg, ctl, out)
        else:
            run_aiosmtplib(spec, msg, ctl, out)
        out["maxRssKB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["version"] = sys.version.split()[0]
    except ImportError as e:
        out = {"skipped": "import failed: %s" % e}
    except Exception as e:  # reported to the orchestrator, which prints it
        out = {"error": "%s: %s" % (type(e).__name__, e)}
    sys.stdout.write("RESULT " + json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
