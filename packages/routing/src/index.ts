export { FleetIndex } from "./fleet-index";
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
} from "./route";
