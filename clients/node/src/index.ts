// Parity's migration hooks for Node.js: see docs/node.md in the repository.

export { Reader, Writer, WriteFrozenError, DEFAULT_TIMEOUT_MS, DEFAULT_SAMPLING, DEFAULT_MAX_IN_FLIGHT } from "./migration.js";
export type { Config, CallOptions, PathFn, PathContext, FlagEvaluator, MigrationStats } from "./migration.js";
export {
  Publisher,
  InvalidOptionError,
  ClosedError,
  DeadlineError,
  REPORT_SUBJECT,
  DEFAULT_QUEUE_SIZE,
  DEFAULT_MAX_PENDING,
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_REPORT_INTERVAL_MS,
  DEFAULT_BATCH_PAIRS,
  DEFAULT_BATCH_BYTES,
  DEFAULT_LINGER_MS,
  RECENT_ID_WINDOW_MS,
} from "./publisher.js";
export type { PublisherOptions, PublisherStats, PairPublisher, DeadlineOptions } from "./publisher.js";
export { STAGES, VERSION, BATCH_VERSION, MAX_BATCH_PAIRS, MAX_SIZE, SUBJECT_PREFIX, BatchWriter, batchID, FieldError, isStage, subject, encodePair, validate } from "./envelope.js";
export type { Stage, Kind, Status, Pair, Observation, User, Flag } from "./envelope.js";
export { keyHash, keyHashHex, inSample } from "./hash.js";
export { formatNumber } from "./attrs.js";
