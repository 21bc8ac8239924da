import { OutlierDetector } from "@meridian/routing";

/** This isolate's passive outlier detector, fed by its own proxy attempts. */
export const outliers = new OutlierDetector();
