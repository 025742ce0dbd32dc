package openapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/twinstac/twinstac/catalog"
	"github.com/twinstac/twinstac/internal/access"
)

type callerKey struct{}

// CallerOf returns who makes the request ctx belongs to.
func CallerOf(ctx context.Context) *access.Caller {
	if c, ok := ctx.Value(callerKey{}).(*access.Caller); ok {
		return c
	}
	return access.Anonymous
}

// authenticate resolves the bearer token of every request into a caller.
// No Authorization header: anonymous. A token that is not valid is a 401
// on every path, so that a client never mistakes a broken token for
// anonymous access.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" || s.deps.Tokens == nil || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		scheme, secret, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
			unauthorized(w, r, catalog.Errorf(catalog.EUNAUTHENTICATED, "the Authorization header must be \"Bearer <token>\""))
			return
		}
		secret = strings.TrimSpace(secret)
		var c *access.Caller
		var err error
		if s.deps.OIDC != nil && access.LooksLikeJWT(secret) {
			c, err = s.deps.OIDC.Authenticate(r.Context(), secret)
		} else {
			c, err = s.deps.Tokens.Authenticate(r.Context(), secret)
		}
		if err != nil {
			unauthorized(w, r, err)
			return
		}
		ctx := context.WithValue(r.Context(), callerKey{}, c)
		ctx = context.WithValue(ctx, loggerKey{}, logger(ctx).With("user", c.User))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	if catalog.ErrorCode(err) == catalog.EUNAUTHENTICATED {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	writeProblem(w, r, err)
}

// Whoami describes the caller.
type Whoami struct {
	Anonymous bool     `json:"anonymous" doc:"True when the request carried no token."`
	User      string   `json:"user,omitempty" doc:"The user id." example:"ana"`
	Groups    []string `json:"groups,omitempty" doc:"The caller's groups."`
	TokenID   string   `json:"token_id,omitempty" doc:"The id of the API token used."`
	Scopes    []string `json:"scopes,omitempty" doc:"The actions the token is limited to; none means all the user may do."`
	Admin     bool     `json:"admin" doc:"Whether the caller is a node administrator."`
	Via       string   `json:"via,omitempty" doc:"How the caller was identified: token, oidc or admin-token." example:"token"`
	Subjects  []string `json:"subjects" doc:"The policy subjects the caller acts as." example:"[\"user:ana\",\"group:eo\"]"`
}

// TokenRequest asks for a new API token.
type TokenRequest struct {
	Name    string     `json:"name" minLength:"1" maxLength:"200" doc:"What the token is for." example:"laptop"`
	Expires *time.Time `json:"expires,omitempty" doc:"When the token stops working (RFC 3339); none: never."`
	Scopes  []string   `json:"scopes,omitempty" enum:"read,create,update,publish,delete,execute,share,admin" doc:"Limit the token to these actions (for example [\"read\"] for a read-only token)."`
	User    string     `json:"user,omitempty" doc:"Admins only: mint the token for this user or service account." example:"svc-ingest"`
	Groups  []string   `json:"groups,omitempty" doc:"Admins only: the groups the token carries."`
}

// TokenInfo describes an API token (never its secret).
type TokenInfo struct {
	ID        string     `json:"id" doc:"The token id."`
	Name      string     `json:"name"`
	User      string     `json:"user"`
	Groups    []string   `json:"groups,omitempty"`
	Scopes    []string   `json:"scopes,omitempty"`
	CreatedBy string     `json:"created_by"`
	Created   time.Time  `json:"created"`
	Expires   *time.Time `json:"expires,omitempty"`
}

// NewToken is a minted token: its description and, this once, its secret.
type NewToken struct {
	TokenInfo
	Token string `json:"token" doc:"The secret to send as \"Authorization: Bearer <token>\". It is shown only now; the server keeps only its hash."`
}

// TokenList is a page of tokens.
type TokenList struct {
	Tokens []TokenInfo `json:"tokens"`
}

func tokenInfo(t *access.Token) TokenInfo {
	i := TokenInfo{ID: t.ID, Name: t.Name, User: t.User, Groups: t.Groups, Scopes: t.Scopes, CreatedBy: t.CreatedBy, Created: t.Created}
	if !t.Expires.IsZero() {
		e := t.Expires
		i.Expires = &e
	}
	return i
}

type whoamiOutput struct{ Body Whoami }

type createTokenInput struct{ Body TokenRequest }

type createTokenOutput struct {
	Location string `header:"Location"`
	Body     NewToken
}

type listTokensInput struct {
	User  string `query:"user" doc:"Admins only: list this user's tokens, or * for everyone's." example:"svc-ingest"`
	After string `query:"after" doc:"Return tokens with ids after this one (paging)."`
	Limit int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
}

type listTokensOutput struct{ Body TokenList }

type tokenPath struct {
	ID string `path:"tokenId" doc:"The token id."`
}

func (s *Server) registerAuth() {
	huma.Register(s.api, s.operation("whoami", http.MethodGet, "/auth/whoami", "Access", "Who am I",
		"Describes the caller: user, groups, token and the policy subjects it acts as.", http.StatusOK),
		func(ctx context.Context, _ *noInput) (*whoamiOutput, error) {
			c := CallerOf(ctx)
			return &whoamiOutput{Body: Whoami{Anonymous: c.IsAnonymous(), User: c.User, Groups: c.Groups, TokenID: c.TokenID,
				Scopes: c.Scopes, Admin: c.IsAdmin(), Via: c.Via, Subjects: c.Subjects()}}, nil
		})

	op := s.operation("createToken", http.MethodPost, "/auth/tokens", "Access", "Create an API token",
		"Mints an API token for the caller (admins: for any user or service account). The answer holds the secret once; the server keeps only its hash.",
		http.StatusCreated, 400, 403)
	op.Security = requiredAuth
	op.SkipValidateBody = false
	huma.Register(s.api, op, func(ctx context.Context, in *createTokenInput) (*createTokenOutput, error) {
		r := access.MintRequest{Name: in.Body.Name, Scopes: in.Body.Scopes, User: in.Body.User, Groups: in.Body.Groups}
		if in.Body.Expires != nil {
			r.Expires = *in.Body.Expires
		}
		tokens, err := s.tokens()
		if err != nil {
			return nil, err
		}
		t, secret, err := tokens.Mint(ctx, CallerOf(ctx), r)
		if err != nil {
			return nil, err
		}
		return &createTokenOutput{Location: s.baseURL(requestOf(ctx)) + "/auth/tokens/" + t.ID,
			Body: NewToken{TokenInfo: tokenInfo(t), Token: secret}}, nil
	})

	op = s.operation("listTokens", http.MethodGet, "/auth/tokens", "Access", "List API tokens",
		"Lists the caller's live tokens (admins: any user's), without their secrets.", http.StatusOK, 400, 403)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *listTokensInput) (*listTokensOutput, error) {
		tokens, err := s.tokens()
		if err != nil {
			return nil, err
		}
		ts, err := tokens.List(ctx, CallerOf(ctx), in.User, in.After, in.Limit)
		if err != nil {
			return nil, err
		}
		out := TokenList{Tokens: make([]TokenInfo, 0, len(ts))}
		for _, t := range ts {
			out.Tokens = append(out.Tokens, tokenInfo(t))
		}
		return &listTokensOutput{Body: out}, nil
	})

	op = s.operation("revokeToken", http.MethodDelete, "/auth/tokens/{tokenId}", "Access", "Revoke an API token",
		"Revokes a token of the caller's (admins: any token); it stops working on the next request.", http.StatusNoContent, 403, 404)
	op.Security = requiredAuth
	huma.Register(s.api, op, func(ctx context.Context, in *tokenPath) (*emptyOutput, error) {
		tokens, err := s.tokens()
		if err != nil {
			return nil, err
		}
		return nil, tokens.Revoke(ctx, CallerOf(ctx), in.ID)
	})
}

// tokens returns the token service; a server built without one (the
// document export) has no signed-in callers.
func (s *Server) tokens() (*access.Tokens, error) {
	if s.deps.Tokens == nil {
		return nil, catalog.Errorf(catalog.EUNAUTHENTICATED, "this server issues no tokens")
	}
	return s.deps.Tokens, nil
}
