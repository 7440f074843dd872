// Public exports of smtplib-queue. No logic lives here.

export { MailQueue, type MailQueueOptions, type WaitOptions } from './queue.js';
export { QueueWorker, type QueueWorkerOptions, type AttemptEvent, type WorkerStats, type QueueWorkerEvents } from './worker.js';
export { SpoolStore, type SpoolStoreOptions } from './spool/spool-store.js';
export type { QueueStore, Claim, EnqueueStreamInput, MessageBody } from './store.js';
export { QueueError, type QueueErrorCode } from './errors.js';
export { DEFAULT_SCHEDULE, resolveSchedule, retryDelay, type RetrySchedule, type ResolvedSchedule } from './schedule.js';
export { applyAttempt, applyInterrupted, pendingRecipients, restingState, view, type AttemptRecord, type RecipientDecision } from './record.js';
export * from './types.js';
export { DEFAULT_RETENTION_MS, DEFAULT_RETENTION_INTERVAL_MS, FINISHED_STATES, isPurgeable, purgeCutoffs, resolveRetention, retentionCutoffs, type FinishedState, type PurgeOptions, type RetentionOptions, type ResolvedRetention } from './retention.js';
