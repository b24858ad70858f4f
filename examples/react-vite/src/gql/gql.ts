/* eslint-disable */
import * as types from './graphql';



/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  fragment OrderFields on Order {\n    id\n    owner\n    customerName\n    email\n    items { sku quantity unitPriceCents }\n    totalCents\n    status\n    version\n    createdAt\n    updatedAt\n    expiresAt\n  }\n": typeof types.OrderFieldsFragmentDoc,
    "\n  subscription OrderChanges($afterSeq: Int) {\n    onOrderChanged(afterSeq: $afterSeq) {\n      seq prevSeq op key version expired clientMutationId committedAtMs\n      order { ...OrderFields }\n    }\n  }\n": typeof types.OrderChangesDocument,
    "\n  query OrderSnapshot($limit: Int, $nextToken: String) {\n    listOrders(limit: $limit, nextToken: $nextToken) {\n      items { ...OrderFields }\n      nextToken\n      seq\n    }\n  }\n": typeof types.OrderSnapshotDocument,
    "\n  mutation CreateOrder($input: CreateOrderInput!, $clientMutationId: ID) {\n    createOrder(input: $input, clientMutationId: $clientMutationId) { ...OrderFields }\n  }\n": typeof types.CreateOrderDocument,
    "\n  mutation CancelOrder($id: ID!, $v: Int!, $clientMutationId: ID) {\n    cancelOrder(id: $id, expectedVersion: $v, clientMutationId: $clientMutationId) { ...OrderFields }\n  }\n": typeof types.CancelOrderDocument,
};
const documents: Documents = {
    "\n  fragment OrderFields on Order {\n    id\n    owner\n    customerName\n    email\n    items { sku quantity unitPriceCents }\n    totalCents\n    status\n    version\n    createdAt\n    updatedAt\n    expiresAt\n  }\n": types.OrderFieldsFragmentDoc,
    "\n  subscription OrderChanges($afterSeq: Int) {\n    onOrderChanged(afterSeq: $afterSeq) {\n      seq prevSeq op key version expired clientMutationId committedAtMs\n      order { ...OrderFields }\n    }\n  }\n": types.OrderChangesDocument,
    "\n  query OrderSnapshot($limit: Int, $nextToken: String) {\n    listOrders(limit: $limit, nextToken: $nextToken) {\n      items { ...OrderFields }\n      nextToken\n      seq\n    }\n  }\n": types.OrderSnapshotDocument,
    "\n  mutation CreateOrder($input: CreateOrderInput!, $clientMutationId: ID) {\n    createOrder(input: $input, clientMutationId: $clientMutationId) { ...OrderFields }\n  }\n": types.CreateOrderDocument,
    "\n  mutation CancelOrder($id: ID!, $v: Int!, $clientMutationId: ID) {\n    cancelOrder(id: $id, expectedVersion: $v, clientMutationId: $clientMutationId) { ...OrderFields }\n  }\n": types.CancelOrderDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment OrderFields on Order {\n    id\n    owner\n    customerName\n    email\n    items { sku quantity unitPriceCents }\n    totalCents\n    status\n    version\n    createdAt\n    updatedAt\n    expiresAt\n  }\n"): typeof import('./graphql').OrderFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription OrderChanges($afterSeq: Int) {\n    onOrderChanged(afterSeq: $afterSeq) {\n      seq prevSeq op key version expired clientMutationId committedAtMs\n      order { ...OrderFields }\n    }\n  }\n"): typeof import('./graphql').OrderChangesDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query OrderSnapshot($limit: Int, $nextToken: String) {\n    listOrders(limit: $limit, nextToken: $nextToken) {\n      items { ...OrderFields }\n      nextToken\n      seq\n    }\n  }\n"): typeof import('./graphql').OrderSnapshotDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateOrder($input: CreateOrderInput!, $clientMutationId: ID) {\n    createOrder(input: $input, clientMutationId: $clientMutationId) { ...OrderFields }\n  }\n"): typeof import('./graphql').CreateOrderDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CancelOrder($id: ID!, $v: Int!, $clientMutationId: ID) {\n    cancelOrder(id: $id, expectedVersion: $v, clientMutationId: $clientMutationId) { ...OrderFields }\n  }\n"): typeof import('./graphql').CancelOrderDocument;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
