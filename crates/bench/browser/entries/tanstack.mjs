// What a TanStack DB app ships to keep a synced collection and live queries over it: createCollection (sync API)
// and the live query engine with its operators. sizes.mjs bundles this file (esbuild, minified, production) to weigh
// it, and run.mjs bundles the same file for the store benchmark page, which uses the exports below.
export { createCollection, createLiveQueryCollection, eq, gt } from "@tanstack/db";
