// What an Apollo app ships to keep GraphQL subscription data live: Apollo Client core, InMemoryCache, the
// graphql-ws link and graphql-ws's client. sizes.mjs bundles this file (esbuild, minified, production) to weigh it,
// and run.mjs bundles the same file for the store benchmark page, which uses the exports below.
import { ApolloClient, ApolloLink, InMemoryCache, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { createClient } from "graphql-ws";

/** An Apollo client as an app creates it: over graphql-ws when given a URL, with no link at all otherwise. */
export function createApolloClient({ wsUrl, cache = new InMemoryCache() } = {}) {
  const link = wsUrl ? new GraphQLWsLink(createClient({ url: wsUrl, lazy: true })) : ApolloLink.empty();
  return new ApolloClient({ cache, link });
}

export { ApolloClient, ApolloLink, InMemoryCache, gql };
