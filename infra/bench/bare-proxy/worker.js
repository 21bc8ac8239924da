// The ceiling for any Worker proxy: forward to one fixed upstream, nothing else.
// Benchmarked side by side with the gateway (bench/gateway.ts), in bare workerd; UPSTREAM is a text binding.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.UPSTREAM + url.pathname + url.search, { method: request.method, headers: request.headers, body: request.body });
  },
};
