/**
 * The most calls one tRPC batch may carry: the server refuses a larger batch with a 400
 * (server/api/http.ts), and the dashboard's client splits its calls into batches of at most
 * this many (components/providers.tsx). Without it a POST batch was bounded by the body's size
 * only: 1,000 mutations in one request ran, one after another, within that one request.
 */
export const MAX_BATCH_CALLS = 50;
