// The who's-online page: the list for the key in the page's fragment.
import "./presence.js";
