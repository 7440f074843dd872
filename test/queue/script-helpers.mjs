// What the queue's scripts (crash soak, several-hosts run, bench suite and
// profile) share: a free loopback port, waiting for a redis-server they
// started to answer PING, and stopping the worker processes they forked. The vitest tests have the same in redis-server.ts.
import fs, { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Whether a Redis on 127.0.0.1:port answers PING with +PONG (a loading Redis answers -LOADING). */
function answersPing(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => { socket.destroy(); resolve(String(data).startsWith('+PONG')); });
    socket.once('error', () => resolve(false));
  });
}

/** Polls every 50 ms until Redis answers PING; false when `timeoutMs` passed first. */
export async function waitForRedis(port, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await answersPing(port)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

/**
 * Writes a generated block (its first line `begin`, its last `end`) into a
 * doc: in place of the block between the same markers, or appended.
 */
export function replaceDocBlock(file, begin, end, block) {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  writeFileSync(file, a >= 0 && b > a ? text.slice(0, a) + block + text.slice(b + end.length) : `${text}\n${block}\n`);
}

/**
 * Counts this process's fs.opendirSync calls on `path` (the spool reads a directory, queue/ for one,
 * through one per pass) until restore().
 */
export function countOpendirs(path) {
  const original = fs.opendirSync;
  const counter = { count: 0, restore: () => { fs.opendirSync = original; } };
  fs.opendirSync = (dirPath, options) => {
    if (String(dirPath) === path) counter.count++;
    return original(dirPath, options);
  };
  return counter;
}

/** Stops forked worker processes: SIGTERM, then SIGKILL for any still there after 5 s; resolves when all have exited. */
export async function stopChildren(children) {
  await Promise.all(children.map((c) => new Promise((done) => {
    if (c.exitCode !== null) return done();
    c.removeAllListeners('exit');
    c.once('exit', done);
    c.kill('SIGTERM');
    setTimeout(() => c.kill('SIGKILL'), 5000).unref();
  })));
}
