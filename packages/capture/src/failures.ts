// Scripted failures: one rule per line, "PHASE [CONDITION ...] -> ACTION".
//
//   RCPT to=~@blocked\.test -> 550 5.1.1 no such user
//   DATA p=0.1 -> 451 4.3.0 try later
//   MAIL tls=no -> 530 5.7.0 Must issue a STARTTLS command first
//   RCPT -> greylist 30
//   DATA -> delay 2000
//   CONNECT n=1 -> drop
//
// PHASE is CONNECT, AUTH, MAIL, RCPT or DATA (DATA answers after the final
// dot; with LMTP a DATA rule with `to=` answers for each matching recipient).
// CONDITIONs (all must hold): from=ADDR, to=ADDR (exact, case-insensitive),
// from=~REGEX, to=~REGEX, helo=~REGEX, user=NAME, tls=yes|no, auth=yes|no,
// size>BYTES (DATA: the message; MAIL: the SIZE= the client declared),
// p=PROBABILITY (0..1), n=COUNT (only the first COUNT matches fire).
// ACTION: a reply "CODE [X.Y.Z] [text]" (4xx or 5xx), `drop` (close the
// connection without a reply), `greylist [SECONDS]` (the first attempt for a
// client/sender/recipient triple gets 451 4.7.1, a retry after SECONDS, default
// 0, is accepted), `accept` (stop looking at later rules), any of them after
// `delay MS` (wait first; `delay MS` alone waits and goes on as usual).

export type Phase = 'CONNECT' | 'AUTH' | 'MAIL' | 'RCPT' | 'DATA';
const PHASES: readonly Phase[] = ['CONNECT', 'AUTH', 'MAIL', 'RCPT', 'DATA'];

export interface ScriptReply {
  code: number;
  /** Reply text, including an enhanced status code when one was given. */
  text: string;
}

export type Outcome =
  | { kind: 'reply'; reply: ScriptReply }
  | { kind: 'drop' }
  | { kind: 'greylist'; seconds: number }
  | { kind: 'accept' }
  | { kind: 'continue' };

type Condition =
  | { key: 'from' | 'to' | 'helo'; regex: RegExp }
  | { key: 'from' | 'to' | 'user'; equals: string }
  | { key: 'tls' | 'auth'; value: boolean }
  | { key: 'size'; over: number }
  | { key: 'p'; probability: number }
  | { key: 'n'; count: number };

export interface FailureRule {
  /** The rule as written, so it can be listed back. */
  source: string;
  phase: Phase;
  conditions: Condition[];
  delayMs: number;
  outcome: Outcome;
  /** Times this rule fired. */
  fired: number;
}

/** What a rule is matched against at one step of a session. */
export interface StepFacts {
  from?: string | undefined;
  /** The recipient at RCPT; at DATA, each recipient in turn (LMTP) or all of them. */
  to?: string[] | undefined;
  helo?: string | undefined;
  user?: string | undefined;
  tls: boolean;
  size?: number | undefined;
}

export class FailureSyntaxError extends Error {
  readonly code = 'ERR_CAPTURE_FAILURE_SYNTAX';
  constructor(
    readonly rule: string,
    reason: string,
  ) {
    super(`--fail "${rule}": ${reason}. Write PHASE [CONDITION ...] -> ACTION, e.g. 'RCPT to=~@blocked\\.test -> 550 5.1.1 no such user'`);
    this.name = 'FailureSyntaxError';
  }
}

/** Parses one rule; throws FailureSyntaxError with the reason. */
export function parseFailureRule(source: string): FailureRule {
  const arrow = source.indexOf('->');
  if (arrow < 0) throw new FailureSyntaxError(source, 'there is no "->" between the match and the action');
  const left = source.slice(0, arrow).trim().split(/\s+/).filter(Boolean);
  const right = source.slice(arrow + 2).trim();
  const phase = left.shift()?.toUpperCase() as Phase | undefined;
  if (!phase || !PHASES.includes(phase)) throw new FailureSyntaxError(source, `the phase must be one of ${PHASES.join(', ')}`);
  const conditions = left.map((c) => parseCondition(source, c));
  let rest = right;
  let delayMs = 0;
  const delay = /^delay\s+(\d+)(?:\s+|$)/i.exec(rest);
  if (delay) {
    delayMs = Number(delay[1]);
    rest = rest.slice(delay[0].length).trim();
  }
  return { source: source.trim(), phase, conditions, delayMs, outcome: parseOutcome(source, rest, phase), fired: 0 };
}

function parseCondition(rule: string, text: string): Condition {
  let m = /^(from|to|helo)=~(.+)$/.exec(text);
  if (m) {
    try {
      return { key: m[1] as 'from' | 'to' | 'helo', regex: new RegExp(m[2]!, 'i') };
    } catch (err) {
      throw new FailureSyntaxError(rule, `${text} is not a valid regular expression (${(err as Error).message})`);
    }
  }
  m = /^(from|to|user)=(.+)$/.exec(text);
  if (m) return { key: m[1] as 'from' | 'to' | 'user', equals: m[2]!.toLowerCase() };
  m = /^(tls|auth)=(yes|no)$/.exec(text);
  if (m) return { key: m[1] as 'tls' | 'auth', value: m[2] === 'yes' };
  m = /^size>(\d+)$/.exec(text);
  if (m) return { key: 'size', over: Number(m[1]) };
  m = /^p=(0(?:\.\d+)?|1(?:\.0*)?)$/.exec(text);
  if (m) return { key: 'p', probability: Number(m[1]) };
  m = /^n=(\d+)$/.exec(text);
  if (m) return { key: 'n', count: Number(m[1]) };
  throw new FailureSyntaxError(rule, `"${text}" is not a condition (from=, to=, from=~, to=~, helo=~, user=, tls=yes|no, auth=yes|no, size>N, p=0..1, n=N)`);
}

function parseOutcome(rule: string, text: string, phase: Phase): Outcome {
  if (text === '') return { kind: 'continue' };
  if (/^drop$/i.test(text)) return { kind: 'drop' };
  if (/^accept$/i.test(text)) return { kind: 'accept' };
  const grey = /^greylist(?:\s+(\d+))?$/i.exec(text);
  if (grey) {
    if (phase !== 'RCPT') throw new FailureSyntaxError(rule, 'greylist works at RCPT');
    return { kind: 'greylist', seconds: Number(grey[1] ?? 0) };
  }
  const reply = /^([45]\d\d)(?:\s+(.*))?$/.exec(text);
  if (!reply) throw new FailureSyntaxError(rule, `"${text}" is not an action (a 4xx/5xx reply, drop, greylist [SECONDS], accept, delay MS [...])`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(reply[2] ?? '')) throw new FailureSyntaxError(rule, 'the reply text holds a control character');
  return { kind: 'reply', reply: { code: Number(reply[1]), text: reply[2]?.trim() || defaultText(Number(reply[1])) } };
}

function defaultText(code: number): string {
  return code >= 500 ? 'Refused by a scripted failure' : 'Deferred by a scripted failure';
}

/**
 * The rule set of one server; rules can be replaced at run time (the API's
 * PUT /api/v1/failures) and are looked at in order, the first match decides.
 */
export class FailureScript {
  rules: FailureRule[] = [];
  private readonly greylisted = new Map<string, number>();

  constructor(
    sources: string[] = [],
    private readonly random: () => number = Math.random,
  ) {
    this.replace(sources);
  }

  /** Replaces every rule (all parsed before any is swapped in). */
  replace(sources: string[]): void {
    const parsed = sources.map(parseFailureRule);
    this.rules = parsed;
    this.greylisted.clear();
  }

  list(): { rule: string; fired: number }[] {
    return this.rules.map((r) => ({ rule: r.source, fired: r.fired }));
  }

  /**
   * The first rule that fires for this step, as a delay and an outcome.
   * `remote` keys the greylist triple.
   */
  decide(phase: Phase, facts: StepFacts, remote = ''): { delayMs: number; outcome: Outcome; rule?: string } {
    for (const rule of this.rules) {
      if (rule.phase !== phase || !this.matches(rule, facts)) continue;
      let outcome = rule.outcome;
      if (outcome.kind === 'greylist') {
        const key = `${remote}\0${facts.from ?? ''}\0${(facts.to ?? []).join(',')}`.toLowerCase();
        const first = this.greylisted.get(key);
        const now = Date.now();
        if (first === undefined) {
          this.greylisted.set(key, now);
          outcome = { kind: 'reply', reply: { code: 451, text: `4.7.1 Greylisted, try again in ${outcome.seconds} seconds` } };
        } else if (now - first < outcome.seconds * 1000) {
          outcome = { kind: 'reply', reply: { code: 451, text: `4.7.1 Greylisted, try again in ${Math.ceil((outcome.seconds * 1000 - (now - first)) / 1000)} seconds` } };
        } else {
          outcome = { kind: 'continue' };
        }
      }
      rule.fired++;
      return { delayMs: rule.delayMs, outcome, rule: rule.source };
    }
    return { delayMs: 0, outcome: { kind: 'continue' } };
  }

  private matches(rule: FailureRule, facts: StepFacts): boolean {
    for (const c of rule.conditions) {
      switch (c.key) {
        case 'from':
          if (!test(c, facts.from)) return false;
          break;
        case 'to':
          if (!(facts.to ?? []).some((to) => test(c, to))) return false;
          break;
        case 'helo':
          if (!test(c, facts.helo)) return false;
          break;
        case 'user':
          if (!test(c, facts.user)) return false;
          break;
        case 'tls':
          if (facts.tls !== c.value) return false;
          break;
        case 'auth':
          if (Boolean(facts.user) !== c.value) return false;
          break;
        case 'size':
          if ((facts.size ?? 0) <= c.over) return false;
          break;
        case 'p':
          if (!(this.random() < c.probability)) return false;
          break;
        case 'n':
          if (rule.fired >= c.count) return false;
          break;
      }
    }
    return true;
  }
}

function test(c: { regex: RegExp } | { equals: string }, value: string | undefined): boolean {
  if (value === undefined) return false;
  return 'regex' in c ? c.regex.test(value) : value.toLowerCase() === c.equals;
}
