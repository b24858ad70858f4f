// The GraphQL documents of the app, typed by graphql-codegen (`npm run codegen` writes src/gql/ from these).
import type { CollectionConfig } from "@subsignal/store";
import { graphql } from "./gql";
import type { OrderFieldsFragment } from "./gql/graphql";

/** An order as the app reads it: the fields of `OrderFields`. */
export type Order = OrderFieldsFragment;

graphql(`
  fragment OrderFields on Order {
    id
    owner
    customerName
    email
    items { sku quantity unitPriceCents }
    totalCents
    status
    version
    createdAt
    updatedAt
    expiresAt
  }
`);

/** subsignal's gapless change stream: every change after `afterSeq`, with the change's order. */
export const OrderChangesDocument = graphql(`
  subscription OrderChanges($afterSeq: Int) {
    onOrderChanged(afterSeq: $afterSeq) {
      seq prevSeq op key version expired clientMutationId committedAtMs
      order { ...OrderFields }
    }
  }
`);

/** The snapshot the stream continues from: a page of orders and the seq it is consistent with. */
export const OrderSnapshotDocument = graphql(`
  query OrderSnapshot($limit: Int, $nextToken: String) {
    listOrders(limit: $limit, nextToken: $nextToken) {
      items { ...OrderFields }
      nextToken
      seq
    }
  }
`);

export const CreateOrderDocument = graphql(`
  mutation CreateOrder($input: CreateOrderInput!, $clientMutationId: ID) {
    createOrder(input: $input, clientMutationId: $clientMutationId) { ...OrderFields }
  }
`);

export const CancelOrderDocument = graphql(`
  mutation CancelOrder($id: ID!, $v: Int!, $clientMutationId: ID) {
    cancelOrder(id: $id, expectedVersion: $v, clientMutationId: $clientMutationId) { ...OrderFields }
  }
`);

/** The `orders` collection: a snapshot plus the change stream, newest first (UUIDv7 keys). */
export const ordersCollection: CollectionConfig = {
  name: "orders",
  subscription: OrderChangesDocument.toString(),
  subscriptionField: "onOrderChanged",
  entityField: "order",
  snapshotQuery: OrderSnapshotDocument.toString(),
  snapshotField: "listOrders",
  descending: true,
};
