// Building blocks for stores that live in other packages (smtplib-queue-redis):
// the same ids, validation and record rules as the spool, so every store
// stores the same thing. Not part of the user-facing API.

export { checkId } from './errors.js';
export { idCreatedAt, newId } from './ids.js';
export { latestCutoff } from './retention.js';
export { validateEnqueue, type ValidEnqueue } from './validate.js';
export { newRecord, newRecipients, requeue, toStoredReply } from './record.js';
export { TurnBatch } from './turn-batch.js';
