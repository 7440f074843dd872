// Errors raised by SMTPPool itself (not by a server).

import { SMTPException, type SMTPExceptionOptions } from '../errors.js';

const NAME = Symbol.for('smtplib.error.class');

export type SMTPPoolErrorCode = 'ERR_SMTP_POOL_FULL' | 'ERR_SMTP_POOL_CLOSED' | 'ERR_SMTP_POOL_DESTROYED';

/**
 * The pool refused a send without trying it: its queue is full
 * (`ERR_SMTP_POOL_FULL`, back-pressure from `maxQueued`), or it was closed
 * (`ERR_SMTP_POOL_CLOSED`) or destroyed (`ERR_SMTP_POOL_DESTROYED`).
 * Always `deliveryStatus: 'not-delivered'`.
 */
export class SMTPPoolError extends SMTPException {
  declare readonly code: SMTPPoolErrorCode;
  constructor(code: SMTPPoolErrorCode, message: string, options: SMTPExceptionOptions = {}) {
    super(message, { deliveryStatus: 'not-delivered', ...options });
    Object.defineProperty(this, 'code', { value: code, enumerable: false, configurable: true });
  }
}

Object.defineProperty(SMTPPoolError, NAME, { value: 'SMTPPoolError' });
Object.defineProperty(SMTPPoolError.prototype, 'name', { get: () => 'SMTPPoolError', configurable: true });
