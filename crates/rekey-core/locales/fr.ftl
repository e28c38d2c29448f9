# Les mails de Rekey en français. Les mêmes messages, avec les mêmes variables, que en.ftl.

## Heures et durées

month = { $month ->
    [1] janvier
    [2] février
    [3] mars
    [4] avril
    [5] mai
    [6] juin
    [7] juillet
    [8] août
    [9] septembre
    [10] octobre
    [11] novembre
   *[12] décembre
}
# 14 h 05 UTC le 26 novembre 2026
time = { $hour } h { $minute } { $zone } le { $day } { $month } { $year }
span-minutes = { $n ->
    [one] { $n } minute
   *[other] { $n } minutes
}
span-hours = { $n ->
    [one] { $n } heure
   *[other] { $n } heures
}
span-hours-minutes = { $hours } { $minutes }

## Ce que partagent les mails avec un lien et un code

link-browser = Ou ouvrez-le dans un navigateur web :
link-code = Si le lien ne s’ouvre pas, choisissez « Saisir un code à la place » dans { $product } et tapez :
link-once = Le lien et le code fonctionnent une seule fois, jusqu’à { $until } ({ $span } après votre demande).
support = Besoin d’aide ? { $contact }

## Le mail de réinitialisation

reset-subject = Réinitialisez votre mot de passe { $product }
reset-lead = Quelqu’un a demandé à réinitialiser le mot de passe du compte { $product } de { $address }.
reset-open = Pour choisir un nouveau mot de passe, ouvrez ce lien sur l’ordinateur où { $product } est installé :
reset-app-button = Ouvrir { $product } pour réinitialiser votre mot de passe
reset-browser-button = Réinitialiser dans le navigateur
reset-ignore = Si vous n’avez rien demandé, ignorez ce mail : votre mot de passe reste le même et personne d’autre ne peut utiliser ce lien.

## Le mail qui termine un nouveau compte

verify-subject = Terminez la création de votre compte { $product }
verify-lead = Quelqu’un a demandé à créer un compte { $product } pour { $address }.
verify-open = Pour terminer, ouvrez ce lien sur l’ordinateur où { $product } est installé :
verify-app-button = Ouvrir { $product } pour terminer
verify-browser-button = Terminer dans le navigateur
verify-until-then = D’ici là, le compte ne peut pas se connecter.
verify-ignore = Si vous n’avez rien demandé, ignorez ce mail : aucun compte n’est créé pour cette adresse.

## Quand quelqu’un tente d’inscrire une adresse qui a déjà un compte

exists-subject = Vous avez déjà un compte { $product }
exists-lead = Quelqu’un a tenté de créer un compte { $product } pour { $address } le { $time }, mais cette adresse en a déjà un.
exists-if-you = Si c’était vous : connectez-vous avec votre mot de passe, ou choisissez « Mot de passe oublié » dans { $product } pour le réinitialiser.
exists-if-not = Si ce n’était pas vous, vous pouvez ignorer ce mail : rien n’a été modifié.

## Après un changement de mot de passe

changed-subject = Votre mot de passe { $product } a été modifié
changed-lead = Le mot de passe du compte { $product } de { $address } a été modifié le { $time } ({ $how }).
changed-how-in-app = modifié dans { $product }
changed-how-link = réinitialisé avec le lien reçu par mail
changed-how-code = réinitialisé avec le code reçu par mail
changed-signed-out = Vous avez été déconnecté partout ; reconnectez-vous avec le nouveau mot de passe.
changed-not-you = Ce n’était pas vous ?
changed-act = Quelqu’un a peut-être accès à votre messagerie. Réinitialisez votre mot de passe tout de suite (« Mot de passe oublié » dans { $product }) et sécurisez votre compte de messagerie.

## rekeyd mail test

test-subject = Message de test de { $product }
test-body = Ceci est un message de test de { $product }, envoyé le { $time }. L’envoi de mail fonctionne.

## Les pages d’accueil de rekeyd (derrière les liens https envoyés par mail)

page-checking = Vérification de votre lien…
page-email = Adresse e-mail
page-code = Code reçu par mail
page-open-app = Ouvrir dans { $product }
page-unreachable = Le serveur n’a pas pu être joint correctement ; réessayez.
page-reset-title = Réinitialiser votre mot de passe
page-reset-or-here = ou choisissez le nouveau mot de passe ici :
page-reset-for = Choisissez un nouveau mot de passe pour { $address }. Ce lien fonctionne jusqu’au { $until }.
page-reset-ask-again = Vous pouvez demander un nouveau lien dans l’application.
page-reset-code-form = Saisissez votre adresse e-mail, le code reçu par mail et un nouveau mot de passe.
page-new-password = Nouveau mot de passe
page-new-password-again = Nouveau mot de passe, à nouveau
page-show-passwords = Afficher les mots de passe
page-strength = Robustesse du mot de passe
page-strength-0 = Très faible
page-strength-1 = Faible
page-strength-2 = Moyen
page-strength-3 = Robuste
page-strength-4 = Très robuste
page-reset-submit = Définir le nouveau mot de passe
page-not-same = Les deux mots de passe ne sont pas identiques.
page-reset-done = Votre mot de passe a été modifié. Connectez-vous avec le nouveau mot de passe.
page-verify-title = Terminer la création de votre compte
page-verify-or-here = ou terminez ici :
page-verify-for = Terminez le compte de { $address }. Ce lien fonctionne jusqu’au { $until }.
page-verify-code-form = Saisissez votre adresse e-mail et le code reçu par mail.
page-verify-password = Le mot de passe que vous avez choisi pour ce compte
page-verify-why = Demandé à nouveau pour que seule la personne qui l’a choisi puisse terminer le compte.
page-verify-submit = Terminer la création du compte
page-verify-done = Votre compte { $address } est prêt. Connectez-vous avec le mot de passe choisi.
page-error-token_used = Ce lien a déjà été utilisé ; demandez-en un nouveau si vous devez réinitialiser à nouveau.
page-error-token_replaced = Ce lien a été remplacé par un plus récent ; utilisez le lien du dernier mail.
page-error-token_stale = Le mot de passe a été modifié après l’envoi de ce lien ; le lien ne fonctionne plus.
page-error-token_expired = Ce lien a expiré ; demandez-en un nouveau.
page-error-code_invalid = Ce code ne fonctionne pas : il est erroné ou n’est plus valable. Consultez le dernier mail, ou ouvrez le lien qu’il contient.
page-error-code_burned = Ce code a été saisi trop de fois de façon erronée et ne fonctionne plus ; demandez une nouvelle réinitialisation.
page-error-password_mismatch = Ce n’est pas le mot de passe choisi lors de la demande de ce compte.
page-error-account_verified = Ce lien a déjà été utilisé et le compte est prêt : connectez-vous avec le mot de passe choisi.
page-error-rate_limited = Trop de tentatives ; attendez quelques minutes et réessayez.
page-error-busy = Le serveur est occupé par d’autres demandes ; réessayez dans un instant.
