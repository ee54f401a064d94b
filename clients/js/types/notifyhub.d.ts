// Types of notifyhub.js (docs/client.md). The module is plain JavaScript; these describe its public surface.

export type HubStatus = "connecting" | "open" | "reconnecting" | "offline" | "refused" | "stopped";

export declare const Status: Readonly<{
  CONNECTING: "connecting";
  OPEN: "open";
  RECONNECTING: "reconnecting";
  OFFLINE: "offline";
  REFUSED: "refused";
  STOPPED: "stopped";
}>;

export interface UserRef {
  id: number;
  username: string;
}

/** A notification as the hub sends it (docs/protocol.md, "notification"), without the frame's `type`. */
export interface HubNotification {
  id: string;
  event: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
  document_id: number | null;
  priority: "low" | "normal" | "high";
  created_at: string;
  expires_at: string | null;
  /** What the user may do from it (`performAction`); often empty. */
  actions: NotificationAction[];
  replayed: boolean;
}

export interface NotificationAction {
  id: string;
  label: string;
  requires_comment: boolean;
}

export interface ActionResult {
  id: string;
  action: string;
  outcome: "approved" | "rejected" | "recorded";
  performedAt: string;
  /** True: performed already (here or on another device); this is the first answer, nothing happened again. */
  alreadyPerformed: boolean;
}

export interface StatusDetail {
  status: HubStatus;
  code?: number;
  reason?: string;
}

export interface NotifyHubEventMap {
  notification: CustomEvent<HubNotification>;
  read: CustomEvent<{ id: string } | { all: true }>;
  /** The work it was about is done (resolution: done, reassigned, withdrawn, decided, retracted): drop it. */
  resolved: CustomEvent<{ id: string; resolution: string; resolvedAt: string }>;
  unread: CustomEvent<{ count: number }>;
  status: CustomEvent<StatusDetail>;
  presence: CustomEvent<{ documentId: number; members: UserRef[] }>;
  typing: CustomEvent<{ documentId: number; user: UserRef }>;
}

export interface AccessToken {
  access: string;
  /** When it expires (ISO 8601, ms since the epoch or a Date); read from the JWT's `exp` when left out. */
  expiresAt?: string | number | Date;
  expires_at?: string;
}

export interface ReconnectOptions {
  initialDelay?: number;
  maxDelay?: number;
  factor?: number;
  random?: () => number;
}

export declare class ReconnectPolicy {
  constructor(options?: ReconnectOptions);
  initialDelay: number;
  maxDelay: number;
  factor: number;
  /** ms to wait before retry number `attempt` (0 first): random(0, min(maxDelay, initialDelay * factor^attempt)). */
  delay(attempt: number): number;
}

export interface HubEnvironment {
  readonly visible: boolean;
  readonly online: boolean;
  /** Call `onChange` when either changes; returns a function that stops listening. */
  listen(onChange: () => void): () => void;
}

export interface NotifyHubOptions {
  /** Resolves with a fresh access token; reject to refuse (TypeError or `transient: true`: retried with backoff). */
  getToken: () => Promise<string | AccessToken>;
  /** ws(s):// URL, or a path resolved against the page. Default "/ws/notifications/". */
  url?: string;
  /** One socket per browser, shared by the tabs (default: where Web Locks and BroadcastChannel exist). */
  share?: boolean;
  /** Which tabs share (default: the user id in the access token). */
  scope?: string;
  reconnect?: ReconnectOptions | { delay(attempt: number): number };
  WebSocket?: typeof WebSocket;
  environment?: HubEnvironment;
  locks?: { request: (...args: any[]) => Promise<unknown> };
  BroadcastChannel?: typeof BroadcastChannel;
}

export declare class NotifyHub extends EventTarget {
  constructor(options: NotifyHubOptions);
  readonly status: HubStatus;
  /** The server's unread count; null before the first hello. */
  readonly unreadCount: number | null;
  readonly user: UserRef | null;
  /** Whether this tab holds the socket (always, once started, without sharing). */
  readonly leading: boolean;
  start(): void;
  stop(): void;
  /** Resolves with the unread count once the server answered. */
  read(id: string): Promise<number>;
  readAll(): Promise<number>;
  /** Rejects with the server's error (`code`: not_found, invalid, forbidden, invalid_transition, already_performed). */
  performAction(id: string, action: string, comment?: string): Promise<ActionResult>;
  join(documentId: number): Promise<UserRef[]>;
  leave(documentId: number): void;
  typing(documentId: number): void;
  addEventListener<K extends keyof NotifyHubEventMap>(
    type: K,
    listener: (event: NotifyHubEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof NotifyHubEventMap>(
    type: K,
    listener: (event: NotifyHubEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}

/** The cross-tab leader election and messaging NotifyHub uses; exported for tests. */
export declare class TabShare {
  static available(locks?: unknown, BroadcastChannel?: unknown): boolean;
}
