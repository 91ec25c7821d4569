// The presence web components; see README "Put presence on your intranet".
export {};
