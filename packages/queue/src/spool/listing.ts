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
 * Claim order of two queue/ names (`<due, 13 digits>-<priority + 10, 2 digits>-<q|d>-<id>.json`), as
 * a sort comparator: the higher priority first, then the earlier due, then the id. Compared character
 * by character, building nothing: a listing used to sort keys built for every due name (a string of
 * about 80 characters each, several objects until flattened), which with a long queue made most of a
 * listing's garbage, promoted to the old generation while the listing was made; with this comparator
 * a worker's peak RSS was lower at a backlog of 128,000 (bench/suites/queue/backlog.mjs).
 */
export function claimOrder(a: string, b: string): number {
  let d = b.charCodeAt(14) - a.charCodeAt(14) || b.charCodeAt(15) - a.charCodeAt(15);
  if (d !== 0) return d;
  for (let i = 0; i < 13; i++) {
    d = a.charCodeAt(i) - b.charCodeAt(i);
    if (d !== 0) return d;
  }
  // The ids: from character 19 to the ".json" (ids of one length in a spool; a shorter one first otherwise).
  const aEnd = a.length - 5;
  const bEnd = b.length - 5;
  for (let i = 19; i < aEnd && i < bEnd; i++) {
    d = a.charCodeAt(i) - b.charCodeAt(i);
    if (d !== 0) return d;
  }
  return aEnd - bEnd;
}

/**
 * A queue/ name prefixed so that plain string order is claimOrder: 99 minus the priority (two
 * digits: the highest first), the due time, the id, then a space and the name (nameOfSortKey).
 */
function sortKey(name: string): string {
  const inverse = 99 - ((name.charCodeAt(14) - 48) * 10 + name.charCodeAt(15) - 48);
  return `${inverse < 10 ? '0' : ''}${inverse}${name.slice(0, 13)}${queueNameId(name)} ${name}`;
}

function nameOfSortKey(key: string): string {
  return key.slice(key.indexOf(' ') + 1);
}

/**
 * The first `limit` of the due queue/ names it is shown, in claim order (claimOrder), without holding
 * them all: a listing of queue/ costs O(limit) memory and O(N log limit) time however many names N
 * wait (a full sort held every name and a key for each: about 60 MB of strings per listing at a
 * million). Names gather in a buffer of 2 x limit; when it fills it is sorted and cut to `limit`, and
 * from then on a name not before the last one kept cannot be among the first and is not kept at all.
 */
export class DueSelection {
  readonly #limit: number;
  readonly #dueBefore: string;
  readonly #names: string[] = [];
  #worst: string | undefined;
  /** Due names shown so far (how long the queue is: see SpoolStore's listing size). */
  due = 0;
  /** The earliest of the names shown that are not yet due, if any (see later()). */
  #later: string | undefined;

  /** `now`: names due after it are left (a later listing sees them). */
  constructor(limit: number, now: number) {
    this.#limit = limit;
    this.#dueBefore = String(now + 1).padStart(13, '0');
  }

  add(name: string): void {
    // Due is a string comparison: the name starts with the 13-digit due time.
    if (!(name < this.#dueBefore)) {
      if ((this.#later === undefined || name < this.#later) && QUEUE_NAME.test(name)) this.#later = name;
      return;
    }
    if (!QUEUE_NAME.test(name)) return;
    this.due++;
    if (this.#worst !== undefined && claimOrder(name, this.#worst) >= 0) return;
    this.#names.push(name);
    if (this.#names.length >= 2 * this.#limit) this.#cut();
  }

  /**
   * Sorts the buffer and keeps its first `limit`. Sorted by a key string per buffered name with
   * sort()'s own string comparison, not with claimOrder as the comparator: a JavaScript comparator
   * runs unoptimized in a worker's first listings, and with it the 4-worker spool cell of
   * bench/suites/queue.js cost about 0.04 ms more CPU per message in its warm window (A/B against
   * the key sort, 8 runs, load about 4). The keys are made for the buffer only (at most 2 x limit
   * names: those claimOrder did not reject), not for every name of queue/.
   */
  #cut(): void {
    const keys: string[] = [];
    for (let i = 0; i < this.#names.length; i++) keys.push(sortKey(this.#names[i]!));
    keys.sort(); // claim order (sortKey)
    const kept = Math.min(keys.length, this.#limit);
    this.#names.length = 0;
    for (let i = 0; i < kept; i++) this.#names.push(nameOfSortKey(keys[i]!));
    if (this.#names.length === this.#limit) this.#worst = this.#names[this.#limit - 1];
  }

  /** When the earliest name shown that was not yet due is due (ms), or Infinity. */
  later(): number {
    return this.#later === undefined ? Infinity : Number(this.#later.slice(0, 13));
  }

  /** The names kept, in claim order. */
  names(): string[] {
    this.#cut();
    return this.#names;
  }
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
 * among its own priority's names right after the last one before it in claim order (a new message,
 * due now, goes after them all: the case a scan back from the end finds at once). Within a priority a
 * listing is striped (own stripe first, then the others'), so this is claim order but for the
 * stripes' interleaving, which only decides which worker tries the name first.
 */
export function mergeAt(names: readonly string[], from: number, name: string): number {
  // The end of the name's priority block: the first remaining name of a lower priority (priority
  // blocks are in order, so a binary search; priority + 10 is the name's characters 14 and 15).
  const priority = name.charCodeAt(14) * 10 + name.charCodeAt(15);
  let lo = from;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (names[mid]!.charCodeAt(14) * 10 + names[mid]!.charCodeAt(15) >= priority) lo = mid + 1;
    else hi = mid;
  }
  // From there back while the name comes first in claim order (usually not once).
  let at = lo;
  while (at > from && samePriority(names[at - 1]!, name) && claimOrder(names[at - 1]!, name) > 0) at--;
  return at;
}
