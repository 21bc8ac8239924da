/** The admin roles, lowest first: what a token or a console session may do. */
export type Role = "viewer" | "editor" | "admin";

const RANK: Record<Role, number> = { viewer: 1, editor: 2, admin: 3 };

export function hasRole(role: Role, minimum: Role): boolean {
  return RANK[role] >= RANK[minimum];
}
