export { FleetIndex, GEO_FLAG_PENALTY_MS, SLOT_COUNT, SLOW_START_MS, SLOW_START_PENALTY_MS, SUSPECT_PENALTY_MS, slotContext, slotOf, slowStartPenaltyMs, unitVector } from "./fleet-index";
export {
  DialBook,
  chooseOffload,
  dialPercent,
  hotspotCensus,
  hotspotQualityIssue,
  nextEngaged,
  subscriberBucket,
  type DialReading,
  type HotspotCensus,
  type OffloadDecision,
  type OffloadInput,
  type OffloadReason,
} from "./offload";
export {
  DEFAULT_FALLBACKS,
  LOAD_PENALTY_MS,
  explainExclusions,
  route,
  type Candidate,
  type ClientPoint,
  type Exclusion,
  type ExclusionReason,
  type NodeFilter,
  type RouteDecision,
  type RouteInput,
  type SlotPolicy,
} from "./route";
export { DEFAULT_OUTLIER_CONFIG, OutlierDetector, type Ejection, type OutlierConfig } from "./outliers";
export {
  CHANGE_LOG_LIMIT,
  FEED_TIMING,
  FleetLog,
  REPLICAS,
  coloCacheKey,
  coloCacheUsable,
  refreshAction,
  replicaFor,
  streamFrameDue,
  type RefreshAction,
} from "./fleet-feed";
