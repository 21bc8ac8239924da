/**
 * Workspace packages the root node_modules does not link (only @meridian/policy, /regions and
 * /node-agent are root devDependencies), re-exported by path so bench/ needs no install.
 * Node resolves through the packages' own symlinks to the same real files, so module
 * instances are shared with @meridian/policy.
 */
export * from "../../packages/protocol/src/index";
export * from "../../packages/routing/src/index";
