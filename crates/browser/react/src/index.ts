// @subsignal/react: React hooks for @subsignal/store. Every hook reads the store through React's
// `useSyncExternalStore`, so no other state library is involved: the store's snapshots stay the same object until
// they change (a view's rows, a collection's rows, one row, the status), and the small objects this module builds
// itself (collection and view states) are shared until their content changes.
//
// Built by `cargo xtask npm` (TypeScript, into `target/npm/react/`) and tested by `crates/browser/react/test/` (Node)
// and `tests/js/e2e/react.e2e.mjs` (the React example in Chromium).
import {
  createContext,
  createElement,
  useCallback,
  useContext,
  useEffect,
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
  useSyncExternalStore,
} from "react";
import type { ReactNode } from "react";
import type {
  Collection,
  CollectionState,
  HistoryRange,
  MutateOptions,
  Mutation,
  Status,
  Store,
  Unsubscribe,
  View,
  ViewSpec,
  ViewState,
} from "@subsignal/store";

const StoreContext = createContext<Store | null>(null);

/** The props of {@link StoreProvider}. */
export interface StoreProviderProps {
  /** The store the hooks below read: created once, outside React (it must outlive StrictMode's double effects). */
  store: Store;
  children?: ReactNode;
}

/** Makes `store` the one every hook in `children` reads. */
export function StoreProvider({ store, children }: StoreProviderProps): ReactNode {
  return createElement(StoreContext.Provider, { value: store }, children);
}

/** The store of the nearest {@link StoreProvider}; throws when there is none. */
export function useStore(): Store {
  const store = useContext(StoreContext);
  if (!store) throw new Error("@subsignal/react: no store here: wrap the app in <StoreProvider store={store}>");
  return store;
}

/** One `Collection` handle per store and collection name, shared by every hook that reads it. */
const collections = new WeakMap<Store, Map<string, Collection<unknown>>>();

function collectionOf<T>(store: Store, name: string): Collection<T> {
  let byName = collections.get(store);
  if (!byName) collections.set(store, (byName = new Map()));
  let collection = byName.get(name);
  if (!collection) {
    collection = store.collection(name);
    byName.set(name, collection);
  }
  return collection as Collection<T>;
}

/** Whether two small plain objects (states) have the same content. */
function sameContent(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** `next`, or `previous` when their content is the same: what a `getSnapshot` built per call must return. */
function shared<T>(previous: T | undefined, next: T): T {
  return previous !== undefined && sameContent(previous, next) ? previous : next;
}

/**
 * The rows of a watched collection, in its order (`readonly T[]`): the same array until a row changes. Throws when
 * the collection is not watched (call `store.watch(config)` before rendering).
 */
export function useCollection<T = unknown>(name: string): readonly T[] {
  const collection = collectionOf<T>(useStore(), name);
  const subscribe = useCallback((listener: () => void) => collection.subscribe(listener), [collection]);
  const getSnapshot = useCallback(() => collection.getSnapshot(), [collection]);
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}

const collectionStates = new WeakMap<Collection<unknown>, CollectionState | null>();

/**
 * Whether a watched collection has `loaded` (show a spinner until then), is `stale` (disconnected or fetching
 * again), its `lastSeq`, whether optimistic effects show (`hasPendingUpdates`) and how old its newest event was
 * when it arrived (`lagMs`); `null` once it is no longer watched.
 */
export function useCollectionState(name: string): CollectionState | null {
  const collection = collectionOf<unknown>(useStore(), name);
  const subscribe = useCallback((listener: () => void) => collection.subscribe(listener), [collection]);
  const getSnapshot = useCallback(() => {
    const state = shared(collectionStates.get(collection), collection.state());
    collectionStates.set(collection, state);
    return state;
  }, [collection]);
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}

const historyRanges = new WeakMap<Collection<unknown>, HistoryRange | null>();

/**
 * The seqs a watched collection's history holds (`{ first, last, events, checkpoints }`, or `null` until its snapshot
 * has caught up): the same object until it changes, following the collection's rows. Read the rows at a seq with
 * `useStore().at(name, seq)`. Throws the store's `HistoryError` when the collection keeps no history (configure
 * `history` when watching it).
 */
export function useHistory(name: string): HistoryRange | null {
  const store = useStore();
  const collection = collectionOf<unknown>(store, name);
  const subscribe = useCallback((listener: () => void) => collection.subscribe(listener), [collection]);
  const getSnapshot = useCallback(() => {
    const range = shared(historyRanges.get(collection), store.history(name));
    historyRanges.set(collection, range);
    return range;
  }, [store, collection, name]);
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}

/**
 * One row of a watched collection by key, or `null`: the same object until this row changes, so a component per
 * row re-renders only when its own row does.
 */
export function useRow<T = unknown>(collection: string, key: string): T | null {
  const handle = collectionOf<T>(useStore(), collection);
  const subscribe = useCallback((listener: () => void) => handle.subscribeRow(key, listener), [handle, key]);
  const getSnapshot = useCallback(() => handle.getRow(key), [handle, key]);
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}

/** The connection's state and the number of unsettled mutations: the same object until it changes. */
export function useStatus(): Status {
  const store = useStore();
  const subscribe = useCallback((listener: () => void) => store.subscribe(listener), [store]);
  const getSnapshot = useCallback(() => store.getSnapshot(), [store]);
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}

/** How long a view opened by a render that never committed stays open before it is freed. */
const ORPHAN_MS = 1000;

/**
 * One hook's live view. It opens the store's view on first use (a render may need its rows before any effect runs),
 * frees it a microtask after its last subscriber left (StrictMode's unsubscribe-and-subscribe again keeps it), frees
 * it too when the render that opened it never committed, and opens it again if it is used after being freed.
 */
class ViewHandle<T> {
  private view: View<T> | null = null;
  private users = 0;
  private held = false;
  private state: ViewState | undefined;
  /** Told when the state changes without the view saying so (hold, release). */
  private readonly stateListeners = new Set<() => void>();

  constructor(
    private readonly store: Store,
    private readonly collection: string,
    private readonly spec: ViewSpec,
  ) {}

  private open(): View<T> {
    if (!this.view) {
      this.view = this.store.view<T>(this.collection, this.spec);
      this.state = undefined;
      if (this.held) this.view.hold();
      if (this.users === 0) setTimeout(() => this.freeIfUnused(), ORPHAN_MS);
    }
    return this.view;
  }

  private freeIfUnused(): void {
    if (this.users === 0 && this.view) {
      this.view.free();
      this.view = null;
    }
  }

  readonly rows = (): readonly T[] => this.open().getSnapshot();

  readonly subscribe = (listener: () => void): Unsubscribe => {
    const view = this.open();
    this.users += 1;
    const stop = view.subscribe(listener);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      stop();
      this.users -= 1;
      if (this.users === 0) queueMicrotask(() => this.freeIfUnused());
    };
  };

  readonly getState = (): ViewState => {
    this.state = shared(this.state, this.open().state());
    return this.state;
  };

  /** The view's state changes with its rows, with its collection (loaded, stale, changes waiting behind a hold) and
   * with hold and release. */
  readonly subscribeState = (listener: () => void): Unsubscribe => {
    const stopView = this.subscribe(listener);
    const stopCollection = collectionOf<unknown>(this.store, this.collection).subscribe(listener);
    this.stateListeners.add(listener);
    return () => {
      this.stateListeners.delete(listener);
      stopCollection();
      stopView();
    };
  };

  setHold(hold: boolean): void {
    if (hold === this.held) return;
    this.held = hold;
    if (!this.view) return;
    if (hold) this.view.hold();
    else this.view.release();
    for (const listener of [...this.stateListeners]) listener();
  }
}

/** Options of {@link useView} and {@link useLiveView}. */
export interface ViewOptions {
  /**
   * Hold what the view shows (while the user reads or edits): events keep applying underneath, and setting it back
   * to false shows the net change at once.
   */
  hold?: boolean;
}

function useViewHandle<T>(collection: string, spec: ViewSpec | undefined, options: ViewOptions | undefined): ViewHandle<T> {
  const store = useStore();
  // The spec is compared by content, so that a spec written inline keeps its view across renders.
  const key = JSON.stringify(spec ?? {});
  const handle = useMemo(() => new ViewHandle<T>(store, collection, JSON.parse(key) as ViewSpec), [store, collection, key]);
  const hold = options?.hold ?? false;
  useEffect(() => handle.setHold(hold), [handle, hold]);
  return handle;
}

/**
 * A live view over a watched collection: the rows matching `spec.where`, sorted by `spec.orderBy`, from
 * `spec.offset`, at most `spec.limit` (`readonly T[]`, the same array until the view changes). The view is opened
 * for this component and freed when it unmounts; a spec with the same content keeps it. Throws when the spec is
 * malformed or the collection is not watched.
 */
export function useView<T = unknown>(collection: string, spec?: ViewSpec, options?: ViewOptions): readonly T[] {
  const handle = useViewHandle<T>(collection, spec, options);
  return useSyncExternalStore(handle.subscribe, handle.rows, handle.rows);
}

/** What {@link useLiveView} gives: the rows and the view's state. */
export interface LiveView<T> {
  rows: readonly T[];
  /** `loaded`, `stale`, `len`, `total` (rows matching), `held`, `hasPendingUpdates` (held, with changes waiting). */
  state: ViewState;
}

/** {@link useView} with the view's state too (the same object until it changes). */
export function useLiveView<T = unknown>(collection: string, spec?: ViewSpec, options?: ViewOptions): LiveView<T> {
  const handle = useViewHandle<T>(collection, spec, options);
  const rows = useSyncExternalStore(handle.subscribe, handle.rows, handle.rows);
  const state = useSyncExternalStore(handle.subscribeState, handle.getState, handle.getState);
  return useMemo(() => ({ rows, state }), [rows, state]);
}

/** What {@link useMutation} gives. */
export interface MutationHook<TResult, TVariables> {
  /** Runs the mutation, the hook's mutation with `call`'s fields on top; errors land in `error`, never thrown. */
  mutate(call?: Partial<Mutation<TResult, TVariables>>, options?: MutateOptions): void;
  /** Like `mutate`, and resolves with the entity the server wrote or rejects with its error (a `MutationError`,
   * see `isMutationError`, or an `AbortError`). */
  mutateAsync(call?: Partial<Mutation<TResult, TVariables>>, options?: MutateOptions): Promise<TResult>;
  /** The latest call has not settled. */
  pending: boolean;
  /** What the latest call resolved with. */
  data: TResult | undefined;
  /** Why the latest call failed; `isMutationError(error)` tells the store's typed errors (validation, conflict…). */
  error: Error | null;
  /** Forgets `data` and `error`. */
  reset(): void;
}

interface MutationState<TResult> {
  pending: boolean;
  data: TResult | undefined;
  error: Error | null;
}

/**
 * A mutation through the store (its optimistic effect shows at once and rolls back if the server refuses): the
 * latest call's `pending`, `data` and `error`. With a typed document as `query`, the result and variable types flow
 * from it.
 */
export function useMutation<TResult = unknown, TVariables = Record<string, unknown>>(
  mutation: Mutation<TResult, TVariables>,
): MutationHook<TResult, TVariables> {
  const store = useStore();
  const base = useRef(mutation);
  useLayoutEffect(() => {
    base.current = mutation;
  });
  const latest = useRef(0);
  const [state, setState] = useState<MutationState<TResult>>({ pending: false, data: undefined, error: null });
  const mutateAsync = useCallback(
    (call?: Partial<Mutation<TResult, TVariables>>, options?: MutateOptions): Promise<TResult> => {
      const id = ++latest.current;
      setState({ pending: true, data: undefined, error: null });
      const settle = (next: MutationState<TResult>) => {
        if (latest.current === id) setState(next);
      };
      let promise: Promise<TResult>;
      try {
        promise = store.mutate<TResult, TVariables>({ ...base.current, ...call }, options);
      } catch (e) {
        promise = Promise.reject(e);
      }
      return promise.then(
        (data) => {
          settle({ pending: false, data, error: null });
          return data;
        },
        (e: unknown) => {
          settle({ pending: false, data: undefined, error: e instanceof Error ? e : new Error(String(e)) });
          throw e;
        },
      );
    },
    [store],
  );
  const mutate = useCallback(
    (call?: Partial<Mutation<TResult, TVariables>>, options?: MutateOptions): void => {
      mutateAsync(call, options).catch(() => {});
    },
    [mutateAsync],
  );
  const reset = useCallback(() => {
    latest.current += 1;
    setState({ pending: false, data: undefined, error: null });
  }, []);
  return useMemo(() => ({ ...state, mutate, mutateAsync, reset }), [state, mutate, mutateAsync, reset]);
}
