export {
  AGENT_VERSION,
  BACKOFF_BASE_MS,
  BACKOFF_CAP_MS,
  BACKOFF_FACTOR,
  DRAIN_TIMEOUT_MS_DEFAULT,
  HEARTBEAT_EVERY_INTERVALS,
  LOAD_CHANGE_THRESHOLD,
  NodeConnection,
  STABLE_CONNECTION_MS,
  directRuntime,
  backoffDelayMs,
  nodeSocketUrl,
  shouldSendHeartbeat,
  type Cancel,
  type ConnectionRuntime,
  type ConnectionState,
  type NodeConnectionEvents,
  type NodeConnectionOptions,
} from "./connection";
export { ChaosNode, validateChaosOptions, type ChaosMode, type ChaosOptions, type HttpHandler } from "./chaos";
export { errorResponse, fetchListener, jsonResponse, writeResponse, type FetchHandler, type RequestContext } from "./http-bridge";
export { RequestVerifier, refusalFor, type SignatureErrorCode, type SignatureRefusal } from "./request-auth";
export { EnrollmentError, adminNodesUrl, enrollNode, type EnrollOptions, type EnrollmentRequest } from "./enroll";
export {
  GPU_CAPACITY_RANGE,
  GPU_VRAM_GB,
  HOTSPOT_CAPACITY_RANGE,
  SIMULATED_GPU_MIX,
  SIMULATED_GPU_HOUR_USD,
  SIMULATED_GPU_SHARE,
  SIMULATED_MODELS,
  modelsFor,
  planFleet,
  simulatedPrice,
  type FleetPlanOptions,
  type SimulatedModel,
  type PlannedNode, type NodeIdentity } from "./fleet";
export { createLogger, silentLogger, type Logger } from "./log";
export {
  DEFAULT_CONNECT_CONCURRENCY,
  describeFleet,
  startSimulator,
  type SimulatedNode,
  type SimulatorHandle,
  type SimulatorOptions,
} from "./simulator";
export {
  DATA_CHUNK_BYTES,
  DEFAULT_TOKEN_MS,
  MAX_CHAT_BODY_BYTES,
  MAX_DATA_BYTES,
  MAX_TOKENS_LIMIT,
  NodeWorkload,
  closeServer,
  createNodeHandler,
  createWorkloadServer,
  listen,
  parseChatCompletionRequest,
  type ChatCompletionRequest,
  type LoadSnapshot,
  type LoadSource,
  type NodeHandlerOptions,
  type WorkloadOptions,
} from "./workload";
export { hashString, randomInt, seededRandom } from "./random";
