/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
export type ChangeOp =
  | 'INSERT'
  | 'MODIFY'
  | 'REMOVE'
  | 'WATERMARK';

export type CreateOrderInput = {
  customerName: string;
  email: string;
  expiresAt?: number | null | undefined;
  id?: string | number | null | undefined;
  items: Array<OrderItemInput>;
};

export type OrderItemInput = {
  quantity: number;
  sku: string;
  unitPriceCents: number;
};

export type OrderStatus =
  | 'CANCELLED'
  | 'DELIVERED'
  | 'PAID'
  | 'PREPARING'
  | 'SHIPPED'
  | 'SUBMITTED';

export type OrderFieldsFragment = { id: string, owner: string | null, customerName: string, email: string, totalCents: number, status: OrderStatus, version: number, createdAt: string, updatedAt: string, expiresAt: number | null, items: Array<{ sku: string, quantity: number, unitPriceCents: number }> };

export type OrderChangesSubscriptionVariables = Exact<{
  afterSeq?: number | null | undefined;
}>;


export type OrderChangesSubscription = { onOrderChanged: { seq: number, prevSeq: number, op: ChangeOp, key: string | null, version: number | null, expired: boolean, clientMutationId: string | null, committedAtMs: number | null, order: { id: string, owner: string | null, customerName: string, email: string, totalCents: number, status: OrderStatus, version: number, createdAt: string, updatedAt: string, expiresAt: number | null, items: Array<{ sku: string, quantity: number, unitPriceCents: number }> } | null } };

export type OrderSnapshotQueryVariables = Exact<{
  limit?: number | null | undefined;
  nextToken?: string | null | undefined;
}>;


export type OrderSnapshotQuery = { listOrders: { nextToken: string | null, seq: number, items: Array<{ id: string, owner: string | null, customerName: string, email: string, totalCents: number, status: OrderStatus, version: number, createdAt: string, updatedAt: string, expiresAt: number | null, items: Array<{ sku: string, quantity: number, unitPriceCents: number }> }> } };

export type CreateOrderMutationVariables = Exact<{
  input: CreateOrderInput;
  clientMutationId?: string | number | null | undefined;
}>;


export type CreateOrderMutation = { createOrder: { id: string, owner: string | null, customerName: string, email: string, totalCents: number, status: OrderStatus, version: number, createdAt: string, updatedAt: string, expiresAt: number | null, items: Array<{ sku: string, quantity: number, unitPriceCents: number }> } | null };

export type CancelOrderMutationVariables = Exact<{
  id: string | number;
  v: number;
  clientMutationId?: string | number | null | undefined;
}>;


export type CancelOrderMutation = { cancelOrder: { id: string, owner: string | null, customerName: string, email: string, totalCents: number, status: OrderStatus, version: number, createdAt: string, updatedAt: string, expiresAt: number | null, items: Array<{ sku: string, quantity: number, unitPriceCents: number }> } | null };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}
export const OrderFieldsFragmentDoc = new TypedDocumentString(`
    fragment OrderFields on Order {
  id
  owner
  customerName
  email
  items {
    sku
    quantity
    unitPriceCents
  }
  totalCents
  status
  version
  createdAt
  updatedAt
  expiresAt
}
    `, {"fragmentName":"OrderFields"}) as unknown as TypedDocumentString<OrderFieldsFragment, unknown>;
export const OrderChangesDocument = new TypedDocumentString(`
    subscription OrderChanges($afterSeq: Int) {
  onOrderChanged(afterSeq: $afterSeq) {
    seq
    prevSeq
    op
    key
    version
    expired
    clientMutationId
    committedAtMs
    order {
      ...OrderFields
    }
  }
}
    fragment OrderFields on Order {
  id
  owner
  customerName
  email
  items {
    sku
    quantity
    unitPriceCents
  }
  totalCents
  status
  version
  createdAt
  updatedAt
  expiresAt
}`) as unknown as TypedDocumentString<OrderChangesSubscription, OrderChangesSubscriptionVariables>;
export const OrderSnapshotDocument = new TypedDocumentString(`
    query OrderSnapshot($limit: Int, $nextToken: String) {
  listOrders(limit: $limit, nextToken: $nextToken) {
    items {
      ...OrderFields
    }
    nextToken
    seq
  }
}
    fragment OrderFields on Order {
  id
  owner
  customerName
  email
  items {
    sku
    quantity
    unitPriceCents
  }
  totalCents
  status
  version
  createdAt
  updatedAt
  expiresAt
}`) as unknown as TypedDocumentString<OrderSnapshotQuery, OrderSnapshotQueryVariables>;
export const CreateOrderDocument = new TypedDocumentString(`
    mutation CreateOrder($input: CreateOrderInput!, $clientMutationId: ID) {
  createOrder(input: $input, clientMutationId: $clientMutationId) {
    ...OrderFields
  }
}
    fragment OrderFields on Order {
  id
  owner
  customerName
  email
  items {
    sku
    quantity
    unitPriceCents
  }
  totalCents
  status
  version
  createdAt
  updatedAt
  expiresAt
}`) as unknown as TypedDocumentString<CreateOrderMutation, CreateOrderMutationVariables>;
export const CancelOrderDocument = new TypedDocumentString(`
    mutation CancelOrder($id: ID!, $v: Int!, $clientMutationId: ID) {
  cancelOrder(id: $id, expectedVersion: $v, clientMutationId: $clientMutationId) {
    ...OrderFields
  }
}
    fragment OrderFields on Order {
  id
  owner
  customerName
  email
  items {
    sku
    quantity
    unitPriceCents
  }
  totalCents
  status
  version
  createdAt
  updatedAt
  expiresAt
}`) as unknown as TypedDocumentString<CancelOrderMutation, CancelOrderMutationVariables>;