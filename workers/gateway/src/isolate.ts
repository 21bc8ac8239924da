import { DialBook, OutlierDetector } from "@meridian/routing";
import { FleetCache } from "./fleet-cache";
import { Metrics } from "./metrics";
import { RequestSigner } from "./request-keys";
import { UsageRecorder } from "./usage";

/**
 * Everything one isolate keeps between the requests it serves, in one place: the fleet
 * snapshot and compiled policy, request metrics, offload boost state per backbone node, the
 * batching usage writer, the passive outlier detector and the request signer's keys.
 * None of it is shared across isolates (docs/design.md says what that means for each).
 */
export const isolate = {
  fleet: new FleetCache(),
  metrics: new Metrics(),
  dials: new DialBook(),
  usage: new UsageRecorder(),
  outliers: new OutlierDetector(),
  signer: new RequestSigner(),
};
