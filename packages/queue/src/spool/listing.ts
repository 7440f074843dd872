// The spool's claim order: which of queue/'s names a worker tries, and in what order. Pure functions of
// names (no I/O), so the order can be tested apart from the store (test/queue/spool-listing.test.ts).
//
// queue/ names are `<due, 13 digits>-<priority + 10, 2 digits>-<q|d>-<id>.json` (see spool-store.ts).

export const QUEUE_NAME = /^(\d{13})-(\d{2})-([qd])-([0-9a-z]+)\.json$/;
/** A control worker (operator commands, recovery) claims nothing from queue/: no stripe of its own. */
export const CONTROL_SUFFIX = '-ctl';
/** A listing holds at least this many names (the first in claim order), when that many are due. */
export const LISTED_MAX = 2048;
/**
 * Claim stripes (see stripeOrder): names of another worker's stripe are taken in order by this one
 * too once more than this many of them wait ahead of its own (that worker is slow, gone or not yet
 * recovered). About 3 standard deviations of the random mix in a full listing (2,048 names, 4 workers);
 * a longer listing (a long queue: see SpoolStore's LISTED_PART) scales it by the square root of its
 * length, as the random mix's deviation grows.
 */
const STRIPE_LAG = 256;

/** The message id in a queue/ name (which QUEUE_NAME matched). */
export function queueNameId(name: string): string {
  return name.slice(19, -5);
}

/**
 * A queue/ name (`<due, 13 digits>-<priority + 10, 2 digits>-<q|d>-<id>.json`) prefixed so that plain
 * string order is claim order: highest priority first (99 - its two digits), then the earliest due,
 * then the id; then a space and the name itself (nameOfClaimKey). Sorted with sort()'s own string
 * comparison, not a JavaScript comparator (which runs unoptimized at a worker's first listings): the
 * first listing of 4,000 names took 8 to 14 ms of a worker process instead of 11 to 42 (4 worker
 * processes of bench/suites/queue.js, load about 5, timed in the process).
 */
export function claimKey(name: string): string {
  const inverse = 99 - ((name.charCodeAt(14) - 48) * 10 + name.charCodeAt(15) - 48);
  return `${inverse < 10 ? '0' : ''}${inverse}${name.slice(0, 13)}${queueNameId(name)} ${name}`;
}

function nameOfClaimKey(key: string): string {
  return key.slice(key.indexOf(' ') + 1);
}

/**
 * The first `limit` of the due queue/ names it is shown, in claim order (claimKey), without holding
 * them all: a listing of queue/ costs O(limit) memory and O(N log limit) time however many names N
 * wait (a full sort held every name and its key: about 60 MB of strings per listing at a million). Keys
 * gather in a buffer of 2 x limit; when it fills it is sorted and cut to `limit`, and from then on a
 * key not below the last one kept cannot be among the first and is not kept at all.
 */
export class DueSelection {
  readonly #limit: number;
  readonly #dueBefore: string;
  readonly #keys: string[] = [];
  #worst: string | undefined;
  /** Due names shown so far (how long the queue is: see SpoolStore's listing size). */
  due = 0;

  /** `now`: names due after it are left (a later listing sees them). */
  constructor(limit: number, now: number) {
    this.#limit = limit;
    this.#dueBefore = String(now + 1).padStart(13, '0');
  }

  add(name: string): void {
    // Due is a string comparison: the name starts with the 13-digit due time.
    if (!(name < this.#dueBefore) || !QUEUE_NAME.test(name)) return;
    this.due++;
    if (this.#worst !== undefined && !before(name, this.#worst)) return;
    const key = claimKey(name);
    if (this.#worst !== undefined && key >= this.#worst) return;
    this.#keys.push(key);
    if (this.#keys.length >= 2 * this.#limit) this.#cut();
  }

  #cut(): void {
    this.#keys.sort(); // claim order (claimKey)
    if (this.#keys.length > this.#limit) this.#keys.length = this.#limit;
    if (this.#keys.length === this.#limit) this.#worst = this.#keys[this.#limit - 1];
  }

  /** The names kept, in claim order. */
  names(): string[] {
    this.#cut();
    const sorted: string[] = [];
    for (let i = 0; i < this.#keys.length; i++) sorted.push(nameOfClaimKey(this.#keys[i]!));
    return sorted;
  }
}

/**
 * Whether `name`'s claim key may be below `key` (another's claim key): its priority and due time
 * compared with the key's, character by character, without building its key. With a long queue most
 * names are not among the first kept: building each one's key made about 100 bytes of garbage a name
 * per listing, and the young generation grew with it (peak RSS of a worker process, bench/suites/queue/backlog.mjs).
 */
function before(name: string, key: string): boolean {
  const inverse = 99 - ((name.charCodeAt(14) - 48) * 10 + name.charCodeAt(15) - 48);
  const theirs = (key.charCodeAt(0) - 48) * 10 + key.charCodeAt(1) - 48;
  if (inverse !== theirs) return inverse < theirs;
  for (let i = 0; i < 13; i++) {
    const a = name.charCodeAt(i);
    const b = key.charCodeAt(2 + i);
    if (a !== b) return a < b;
  }
  return true; // the same priority and due time: the ids decide (the whole key)
}

/**
 * `sorted` (names in claim order) in the order `worker` claims them: with several claiming workers
 * (`workers`: workers/'s names), its stripe first (stripeOrder). Its arrays built by push: this
 * inlined in an async function, and stripeOrder, were a worker's largest TurboFan compiles (a fifth to
 * a third of a worker process's compile time), each compiled three times, their optimized code thrown
 * away on "wrong map" of the array map() returned (bench/suites/queue/compiles.mjs).
 */
export function listingOrder(sorted: string[], workers: readonly string[], worker: string): string[] {
  // The workers that claim (control workers do not), in one order every process sees alike.
  const claimers: string[] = [];
  for (let i = 0; i < workers.length; i++) {
    const name = workers[i]!;
    if (name.endsWith('.json') && !name.endsWith(`${CONTROL_SUFFIX}.json`)) claimers.push(name);
  }
  claimers.sort();
  const rank = claimers.indexOf(`${worker}.json`);
  return rank >= 0 && claimers.length > 1 && sorted.length > 0 ? stripeOrder(sorted, claimers.length, rank) : sorted;
}

/**
 * Claim stripes: workers claiming from one queue/ would all try the same names in the same order,
 * and all but one rename of each name fail (4 worker processes, 4,000 messages: 2.4 failed renames
 * per message claimed, each an exception). So each message belongs to one worker's stripe (its id's
 * last two characters, which are random, modulo the number of claiming workers), and within each
 * priority a worker's listing has its own stripe's names first, then the others' (taken once its
 * own run out: work stealing). Priorities stay strict: all of one priority before any of a lower.
 * Other workers' names also come first where that worker falls behind (a slow worker, or one gone
 * and not yet recovered): every name of the priority up to the last point where more than
 * STRIPE_LAG of theirs wait before this worker's own. `sorted` is in claim order; so is each part.
 */
export function stripeOrder(sorted: readonly string[], workers: number, rank: number): string[] {
  const mine = (name: string): boolean => (name.charCodeAt(name.length - 6) * 31 + name.charCodeAt(name.length - 7)) % workers === rank;
  const out: string[] = [];
  const theirs: string[] = [];
  const maxLag = sorted.length <= LISTED_MAX ? STRIPE_LAG : Math.round(STRIPE_LAG * Math.sqrt(sorted.length / LISTED_MAX));
  for (let start = 0; start < sorted.length; ) {
    // One priority: names [start, end) (the priority is the name's characters 14 and 15).
    let end = start + 1;
    while (end < sorted.length && samePriority(sorted[end]!, sorted[start]!)) end++;
    let behind = start; // names before this are taken in order, whoever's they are
    let lag = 0; // others' names seen minus (workers - 1) x own names seen
    for (let i = start; i < end; i++) {
      if (mine(sorted[i]!)) lag -= workers - 1;
      else if (++lag > maxLag) behind = i + 1;
    }
    for (let i = start; i < behind; i++) out.push(sorted[i]!);
    theirs.length = 0;
    for (let i = behind; i < end; i++) (mine(sorted[i]!) ? out : theirs).push(sorted[i]!);
    out.push(...theirs);
    start = end;
  }
  return out;
}

function samePriority(a: string, b: string): boolean {
  return a.charCodeAt(14) === b.charCodeAt(14) && a.charCodeAt(15) === b.charCodeAt(15);
}

/**
 * Where in a listing (`names`, claim order of one worker, names before `from` already tried) a name
 * this process just put in queue/ goes, so that it is claimed in claim order without a new listing:
 * after every name of a higher priority, before every name of a lower one (priorities strict), and
 * among its own priority's names right after the last one whose claim key is smaller (a new message,
 * due now, goes after them all: the case a scan back from the end finds at once). Within a priority a
 * listing is striped (own stripe first, then the others'), so this is claim order but for the
 * stripes' interleaving, which only decides which worker tries the name first.
 */
export function mergeAt(names: readonly string[], from: number, name: string): number {
  const key = claimKey(name);
  // The end of the name's priority block: the first remaining name of a lower priority (priority
  // blocks are in order, so a binary search).
  let lo = from;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (claimKey(names[mid]!).slice(0, 2) <= key.slice(0, 2)) lo = mid + 1;
    else hi = mid;
  }
  const end = lo;
  // From there back while the name's claim key is the smaller one (usually not once).
  let at = end;
  while (at > from && samePriority(names[at - 1]!, name) && claimKey(names[at - 1]!) > key) at--;
  return at;
}
