// class LMTP (RFC 2033): LHLO instead of EHLO, no HELO fallback, a host that
// starts with "/" is a Unix socket, and after the data one reply per
// recipient accepted at RCPT, in RCPT order (smtplib reads only one:
// cpython gh-76984). sendmail() reports the recipients that failed after the
// data in its refused map, and throws SMTPDataError only if all failed.

import type { Reply } from '../protocol/reply.js';
import { LMTP_PORT } from './options.js';
import { SMTP } from './smtp.js';

export class LMTP extends SMTP {
  static override readonly defaultPort: number = LMTP_PORT;
  protected override readonly ehloVerb: string = 'LHLO';

  /** The per-recipient replies of the last data() call, in RCPT order. */
  lastDataReplies: Reply[] = [];

  protected override allowsHeloFallback(): boolean {
    return false;
  }

  protected override isLmtp(): boolean {
    return true;
  }

  protected override dataReplyCount(): number {
    return Math.max(1, this.acceptedSinceMail);
  }

  /** data() returns the first failure if any recipient failed, else the last reply. */
  protected override summarizeDataReplies(replies: Reply[]): Reply {
    this.lastDataReplies = replies;
    return replies.find((r) => !r.isPositive) ?? replies[replies.length - 1]!;
  }

  /** LMTP never uses implicit TLS on its own. */
  protected override useImplicitTls(): boolean {
    return false;
  }
}
