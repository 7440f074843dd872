// class SMTP_SSL: SMTP over implicit TLS (RFC 8314), port 465 by default.
// It changes one seam: the connection is TLS from the first byte, verified
// against the host name (or tls.servername), TLS 1.2 at least.

import { SMTP } from './smtp.js';
import { SMTP_SSL_PORT } from './options.js';

export class SMTP_SSL extends SMTP {
  static override readonly defaultPort: number = SMTP_SSL_PORT;

  protected override useImplicitTls(): boolean {
    return true;
  }
}
