export { CompiledPolicy, DEFAULT_RULE_ID, PolicyCompileError, compilePolicy, type ClientContext, type Decision, type NodeContext, type NodeJudge } from "./compile";
export {
  NODE_CLASSES,
  clientUniverse,
  diffPolicies,
  fleetImpact,
  impactMatrix,
  tenantImpact,
  validatePolicy,
  type Finding,
  type ImpactChange,
  type TenantImpactChange,
  type NodeClass,
  type PolicyDiff,
  type ValidationResult,
} from "./analyze";
