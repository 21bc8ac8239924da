declare global {
  namespace Cloudflare {
    interface Env extends globalThis.Env {}
  }
}
export {};
