// Public exports of smtplib-queue-redis. No logic lives here.
export { RedisStore, type RedisStoreOptions } from './redis-store.js';
