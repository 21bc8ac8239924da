export * from "./common";
export * from "./node-messages";
export * from "./api";
export * from "./fleet";
export * from "./identity";
export * from "./policy";
export * from "./liveness";
export * from "./carriers";
